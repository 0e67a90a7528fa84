"""Chat apps (and, through the same pipeline, completion apps).

Order of a run: input moderation (a flagged input answers the preset response and calls no
model) -> knowledge retrieval -> the model call (streamed when the caller streams) -> output
moderation (a flagged answer is replaced) -> suggested questions -> ``RunCompleted``.
"""

from __future__ import annotations

from collections.abc import Iterator

from opstrail.errors import RuntimeFailure
from opstrail.runtime.apps import steps
from opstrail.runtime.apps.common import (
    AnswerDelta,
    AnswerReplaced,
    RunCompleted,
    RunDeps,
    RunEvent,
    RunFailed,
    RunRecorder,
    RunRequest,
    relay,
)
from opstrail.runtime.models.base import ModelRequest
from opstrail.runtime.models.calls import call_model, stream_call
from opstrail.runtime.prompt import build_messages
from opstrail.tracing.info import MessageStatus


def run_chat(request: RunRequest, deps: RunDeps) -> Iterator[RunEvent]:
    """Run one chat or completion message; yields events, ends with ``RunCompleted``."""
    recorder = RunRecorder(request)
    spec = request.spec
    check = steps.moderate_input(recorder)
    if check is not None and check.flagged:
        answer = check.preset_response
        if answer:
            yield AnswerDelta(answer)
        yield RunCompleted(
            recorder.finish(answer=answer, status=MessageStatus.NORMAL, error=None,
                            error_code=None, moderation_flagged=True)
        )
        return
    try:
        recorder.resolved = deps.models.resolve(spec.model.provider, spec.model.name)
    except RuntimeFailure as exc:
        yield RunFailed(exc.code, exc.message)
        yield RunCompleted(recorder.finish(answer="", status=MessageStatus.ERROR,
                                           error=exc.message, error_code=exc.code))
        return
    context = steps.retrieve(recorder, deps)
    messages = build_messages(spec, inputs=request.inputs, query=request.query,
                              history=request.history, context=context)
    params = dict(spec.model.completion_params)
    stop = params.get("stop")
    model_request = ModelRequest(
        provider=recorder.resolved.provider,
        model=recorder.resolved.model,
        messages=tuple(messages),
        parameters={k: v for k, v in params.items() if k != "stop"},
        mode=spec.model.mode,
        stop=tuple(str(s) for s in stop) if isinstance(stop, list) else (),
    )
    if request.stream:
        outcome = yield from relay(
            stream_call(recorder.resolved, model_request, should_stop=request.should_stop),
            AnswerDelta,
        )
    else:
        outcome = call_model(recorder.resolved, model_request, stream=False)
    recorder.model_calls.append(outcome.record)
    if outcome.error is not None or outcome.result is None:
        failure = outcome.error or RuntimeFailure("the model returned nothing",
                                                  code="completion_request_error")
        yield RunFailed(failure.code, failure.message)
        yield RunCompleted(recorder.finish(answer=outcome.record.completion
                                           if isinstance(outcome.record.completion, str) else "",
                                           status=MessageStatus.ERROR, error=failure.message,
                                           error_code=failure.code))
        return
    answer = outcome.result.text
    if outcome.stopped:
        yield RunCompleted(recorder.finish(answer=answer, status=MessageStatus.STOPPED,
                                           error=None, error_code=None))
        return
    output_check = steps.moderate_output(recorder, answer)
    if output_check is not None and output_check.flagged:
        answer = output_check.preset_response
        yield AnswerReplaced(answer)
    if not request.stream:
        yield AnswerDelta(answer)
    steps.suggest(recorder, recorder.resolved, answer)
    yield RunCompleted(recorder.finish(answer=answer, status=MessageStatus.NORMAL, error=None,
                                       error_code=None))
