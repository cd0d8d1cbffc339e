"""Generation routes: submitting photos and prompts, the jobs, the queue."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Query, Response, UploadFile

from deployments.http.auth import CallerDep
from deployments.http.deps import CursorQuery, JobDep, LinksDep, ServicesDep
from deployments.http.links import RequestLinks
from deployments.submission import GenerationForm, TextTo3DRequest
from sweedle_core.access.keys import may_see
from sweedle_core.db.library import JobQuery
from sweedle_core.db.models import GenerationJob
from sweedle_core.jobs.states import JobStatus
from sweedle_core.jobs.views import status_view
from sweedle_core.params import VIEWS
from sweedle_core.schemas import JobPage, JobRead, QueueJob, QueueStatus, SubmitResponse

router = APIRouter(prefix="/api/generation", tags=["generation"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="the same key with the same request returns the first job, never a second "
        "one; with another request: 409. Remembered for IDEMPOTENCY_TTL_HOURS.",
    ),
]
REPLAYED = "Idempotent-Replayed"


def _answer(
    response: Response, taken: tuple[GenerationJob, bool], links: RequestLinks
) -> SubmitResponse:
    """The job a submission made, or the earlier one an identical request made (marked)."""
    job, replayed = taken
    if replayed:
        response.headers[REPLAYED] = "true"
    return SubmitResponse.of(job, links)


@router.post("/image-to-3d", status_code=202, response_model=SubmitResponse)
async def image_to_3d(
    form: Annotated[GenerationForm, Form()],
    file: Annotated[UploadFile, File()],
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    links: LinksDep,
    idempotency_key: IdempotencyKey = None,
) -> SubmitResponse:
    """Upload a photo; the job is queued and its progress streams on `/ws/progress`."""
    taken = await services.submission.submit(form, file, caller, idempotency_key, links.root)
    return _answer(response, taken, links)


PhotoOfView = Annotated[
    UploadFile | None, File(description="the object photographed from this side (optional)")
]


@router.post("/multiview-to-3d", status_code=202, response_model=SubmitResponse)
async def multiview_to_3d(
    form: Annotated[GenerationForm, Form()],
    front: Annotated[UploadFile, File(description="the object from the front (required)")],
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    links: LinksDep,
    left: PhotoOfView = None,
    back: PhotoOfView = None,
    right: PhotoOfView = None,
    idempotency_key: IdempotencyKey = None,
) -> SubmitResponse:
    """Upload photos of one object from several sides: `front`, and any of `left` (the camera
    at the object's left), `back` and `right`. A multi-view model (Hunyuan3D-2mv) is
    conditioned on all of them; the silhouette backend carves their outlines into a visual
    hull; other backends use the front."""
    sides = dict(zip(VIEWS, (front, left, back, right), strict=True))
    files = {view: file for view, file in sides.items() if file is not None}
    taken = await services.submission.submit_views(form, files, caller, idempotency_key, links.root)
    return _answer(response, taken, links)


@router.post("/text-to-3d", status_code=202, response_model=SubmitResponse)
async def text_to_3d(
    request: TextTo3DRequest,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    links: LinksDep,
    idempotency_key: IdempotencyKey = None,
) -> SubmitResponse:
    """A prompt becomes an image (TEXT_TO_IMAGE_MODEL), then a 3D asset like an upload."""
    taken = await services.submission.submit_text(request, caller, idempotency_key, links.root)
    return _answer(response, taken, links)


@router.get("/jobs", response_model=JobPage)
async def list_jobs(
    services: ServicesDep,
    caller: CallerDep,
    status: Annotated[list[JobStatus], Query(description="any of these (repeat it)")] = [],  # noqa: B006
    created_after: Annotated[datetime | None, Query(description="ISO 8601, inclusive")] = None,
    created_before: Annotated[datetime | None, Query(description="ISO 8601, exclusive")] = None,
    asset_id: Annotated[str | None, Query(pattern=r"^[0-9a-f]{32}$")] = None,
    owner: Annotated[
        str | None, Query(max_length=64, description="one key's jobs (an admin key's filter)")
    ] = None,
    page: Annotated[int | None, Query(ge=1, le=100_000, description="default 1")] = None,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: CursorQuery = None,
) -> JobPage:
    """Job history, newest first; ``cursor`` (the last page's ``next_cursor``) goes on."""
    query = JobQuery(
        page=page,
        page_size=page_size,
        status=[s.value for s in status],
        created_after=created_after,
        created_before=created_before,
        asset_id=asset_id,
        owner=owner,
        cursor=cursor,
    )
    return JobPage.of(await services.store.library.jobs(query, caller.sees))


@router.get("/jobs/{job_id}", response_model=JobRead)
async def get_job(job: JobDep) -> JobRead:
    """A job, with its webhook deliveries."""
    return JobRead.model_validate(job)


@router.delete("/jobs/{job_id}", response_model=QueueJob)
async def cancel_job(job: JobDep, services: ServicesDep) -> QueueJob:
    """Cancel a job: a waiting one at once, a running one at its next progress step."""
    return QueueJob(**await services.queue.cancel.remote(job.id))


@router.get("/queue/status", response_model=QueueStatus)
async def queue_status(services: ServicesDep, caller: CallerDep) -> QueueStatus:
    """Counts for everyone; which jobs the generators run, for an admin key (or no keys)."""
    return QueueStatus(**status_view(await services.queue.status.remote(), caller.sees))


@router.get("/queue/jobs", response_model=list[QueueJob])
async def queue_jobs(services: ServicesDep, caller: CallerDep) -> list[QueueJob]:
    """Active jobs (the key's own, unless it is an admin key): running ones first, then
    waiting ones in the order they will run."""
    jobs = await services.queue.jobs.remote()
    return [QueueJob(**j) for j in jobs if may_see(caller.sees, j.get("owner"))]
