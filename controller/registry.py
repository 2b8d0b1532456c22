"""The only module that talks to MLflow: read the live state of some models, and perform one write."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import re
import socket
import time
import urllib.request
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from . import filters, unity, uris
from .errors import RegistryError, ResolveError
from .model import LiveModel, LiveState, LiveVersion, Stage, VersionDetail

# MLflow's defaults retry a dead server for about four minutes; a reconcile job should say so in seconds.
# Whether the server is there at all is a quick connect (_preflight); a request may then take as long as a
# large registry's biggest page needs. Users keep the last word: a variable already set is left alone.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
CONNECT_TIMEOUT = 5.0
_PAGE_MODELS = 1000  # the server's maximum for search_registered_models
_PAGE_VERSIONS = 200_000  # the server's maximum for search_model_versions
_PARALLEL_READS = 8  # searches side by side, name by name, on a server that takes no list of names
_NEAR, _PREFIX = 5, 3  # a misspelt name's look-alikes: searched for the first 5, by their first 3 characters
_PROBE_HIDDEN = 20  # missing models asked for one by one, to tell "not there" from "not yours to read"
_PROMPT_TAG = "mlflow.prompt.is_prompt"

T = TypeVar("T")

DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")  # MLflow's SQL store, with the [local] extra

# stagectl's own bookkeeping model, the only model it ever creates or deletes: see lease.py.
LEASE_MODEL = "stagectl-lease"


class Registry:
    """A model registry at one registry URI, with the tracking server that runs and artifacts belong to."""

    def __init__(self, registry_uri: str, tracking_uri: str | None = None, *, unity_lease: str | None = None) -> None:
        """`unity_lease`: the lease model's name when the registry is Unity Catalog (also assumed for a
        databricks-uc URI): then stagectl makes only the calls UC serves, with UC-safe tag keys."""
        for name, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)
        tracking_uri = tracking_uri or registry_uri
        self.uri = registry_uri
        self.tracking_uri = tracking_uri
        self.display_uri = uris.redact(registry_uri)
        self._secrets = tuple(dict.fromkeys(uris.secrets(registry_uri) + uris.secrets(tracking_uri)))
        _refuse_not_a_registry(registry_uri, self.display_uri)
        _preflight(registry_uri, self.display_uri)
        # Stages are deprecated (MLflow 2.9) but still served; the README says so once, logs need not.
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"mlflow(\.|$)")
        warnings.filterwarnings("ignore", message=r".*[Ss]tages? .*deprecated.*", category=FutureWarning)
        from mlflow.tracking._model_registry.client import ModelRegistryClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        # The registry client, unlike MlflowClient, sends no extra GET before each write.
        try:
            self._client = self._call(lambda: ModelRegistryClient(registry_uri, tracking_uri))
        except RegistryError as e:
            # mlflow-skinny (what stagectl installs) registers no database stores: it calls the URI unsupported.
            if "unsupported URI" in str(e) and registry_uri.split(":", 1)[0].split("+")[0] in DATABASE_SCHEMES:
                import importlib.util

                missing = [m for m in ("sqlalchemy", "alembic") if importlib.util.find_spec(m) is None]
                if missing:
                    from .extras import install_hint

                    raise RegistryError(
                        f"{self.display_uri} is a database, which needs MLflow's SQL store ({missing[0]} is not "
                        f"installed): {install_hint('local')}; or use the registry's server, http(s)://HOST:PORT"
                    ) from None
            raise
        self._in_lists: bool | None = None  # whether the server takes `name IN (...)`: known once asked
        self._filterable = True  # whether it takes name filters at all
        self.unity = unity_lease is not None or unity.is_registry(registry_uri)
        self.lease_model = unity_lease or (unity.lease_model(()) if self.unity else LEASE_MODEL)
        if self.unity:  # one `name='...'` per version search, none on model searches, no order_by anywhere
            self._in_lists, self._filterable = False, False

    @property
    def parallel_writes(self) -> bool:
        """Whether concurrent writes are safe and useful: a server is; a local sqlite file locks."""
        return self.uri.startswith(("http://", "https://", "databricks"))

    def read(self, names: Collection[str] | None) -> LiveState:
        """Every version and alias of the named models that exist (None: of all models).

        Reads whole pages, never one request per model or version, except from a server that takes no
        list of names: then one per named model, so that the requests still follow the file.
        """
        for attempt in range(3):
            try:
                return self._read(names)
            except RegistryError as e:
                # A model deleted while the server assembles a search page (another apply's lease) makes the
                # whole search fail: it is a race with that delete, not a missing model; read again.
                if e.code != "RESOURCE_DOES_NOT_EXIST" or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _read(self, names: Collection[str] | None) -> LiveState:
        wanted = None if names is None else set(names) - {self.lease_model}
        models, prompts, by_name = self._models(wanted)
        versions: dict[str, dict[str, LiveVersion]] = {name: {} for name in models}
        strays: set[str] = set()  # models with versions that the model search did not return

        def keep(page: Iterable[Any]) -> None:
            for mv in page:
                if mv.name in versions:  # the versions of other models are dropped as they come
                    versions[mv.name][str(mv.version)] = self._version(mv)
                elif mv.name != self.lease_model and mv.name not in prompts and (wanted is None or mv.name in wanted):
                    strays.add(mv.name)

        if self.unity:  # versions are found by model name only: one search per model
            keep(self._by_name(self._search_versions, sorted(models)))
            by_name, wanted = True, None  # and every model is listed: there is no stray to look for
        elif by_name:
            try:
                keep(self._by_name(self._search_versions, sorted(models)))
            except RegistryError as e:
                if e.code != "INVALID_PARAMETER_VALUE":
                    raise
                self._filterable, by_name = False, False
        if not by_name:
            for page in self._pages(functools.partial(self._search_versions, "")):
                keep(page)
        elif wanted is not None and wanted - models.keys():
            keep(self._by_name(self._search_versions, sorted(wanted - models.keys())))
        self._refuse_unlisted(strays)
        missing = sorted(set(names or ()) - {self.lease_model} - models.keys() - prompts)
        return LiveState(models={
            name: LiveModel(name=name, versions=versions[name], aliases=models[name][0], tags=models[name][1])
            for name in sorted(models)
        }, hidden=self._hidden(missing))

    def _hidden(self, missing: list[str]) -> frozenset[str]:
        """Which of these models, missing from the searches, exist but are kept from these credentials: a server
        with per-model permissions leaves them out of every search and refuses to show them. One request each,
        for the first few, and only for a server: a local store has no permissions."""
        if not self.parallel_writes or not missing:
            return frozenset()

        def denied(name: str) -> bool:
            try:
                self._call(lambda: self._client.get_registered_model(name))
            except RegistryError as e:
                return e.code == "PERMISSION_DENIED"
            return False

        with ThreadPoolExecutor(max_workers=_PARALLEL_READS) as pool:
            flags = list(pool.map(denied, missing[:_PROBE_HIDDEN]))
        return frozenset(name for name, flag in zip(missing, flags, strict=False) if flag)

    def _refuse_unlisted(self, strays: set[str]) -> None:
        """A registry that shows versions of a model it does not list has not answered the model search right
        (MLflow 3's prompt filter on a 2.x server lists no model at all): reading on would call models missing
        that exist, and an export of it would be empty."""
        if not strays:
            return
        if self._filterable:
            try:  # a model registered between the two searches is listed now: it is simply not in this read
                strays -= {rm.name for rm in self._by_name(self._search_models, sorted(strays))}
            except RegistryError as e:
                if e.code != "INVALID_PARAMETER_VALUE":
                    raise
        if strays:
            shown = ", ".join(repr(name) for name in sorted(strays)[:5]) + (", ..." if len(strays) > 5 else "")
            raise RegistryError(f"the registry at {self.display_uri} ({self.server()}) returns versions of {shown} "
                                "but does not list the model; refusing to read it as missing")

    def server(self) -> str:
        """What the registry is, for messages: 'MLflow server 2.9.2', or its kind when it cannot say."""
        if not self.uri.startswith(("http://", "https://")):
            return "a local store" if "://" in self.uri else self.uri
        try:
            from mlflow.utils.rest_utils import http_request

            response = http_request(self._client.store.get_host_creds(), "/version", "GET", max_retries=0,
                                    timeout=CONNECT_TIMEOUT)
            if response.ok and re.fullmatch(r"[\w.+-]{1,40}", response.text.strip()):
                return f"MLflow server {response.text.strip()}"
        except Exception:  # only a message depends on it
            pass
        return "a server that does not report its MLflow version"

    def _models(self, wanted: set[str] | None) -> tuple[dict[str, tuple[dict[str, str], dict[str, str]]], set[str],
                                                        bool]:
        """The aliases and tags of every wanted model that exists, the prompts seen, and whether to ask for the
        models' versions by name.

        By name when the names fit one search, or when the first page shows that most of the registry is other
        models: then the cost follows the models in the file, not the size of the registry. Otherwise every
        model in the largest pages: as few requests as the registry allows.
        """
        found: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
        prompts: set[str] = set()  # MLflow 3 keeps prompts as registered models; they are not models to manage
        seen = 0  # models on the unfiltered pages read so far

        def keep(page: Iterable[Any]) -> None:
            for rm in page:
                if (rm.tags or {}).get(_PROMPT_TAG) == "true":
                    prompts.add(rm.name)
                elif rm.name != self.lease_model and (wanted is None or rm.name in wanted):
                    found[rm.name] = ({alias: str(v) for alias, v in (rm.aliases or {}).items()},
                                      self._tags(rm.tags))

        def by_name(names: set[str]) -> bool:
            try:
                keep(self._by_name(self._search_models, sorted(names)))
            except RegistryError as e:
                if e.code != "INVALID_PARAMETER_VALUE":
                    raise
                self._filterable = False  # a server that cannot search models by name is read whole
            return self._filterable

        def mostly_others() -> bool:
            return wanted is not None and self._filterable and 2 * len(found) < seen

        if wanted is not None and self._filterable and self._requests(wanted) <= 1 and by_name(wanted):
            return found, prompts, True
        for page in self._pages(functools.partial(self._search_models, "")):
            keep(page)
            seen += len(page)
            # Not every name missing so far sorts after this page (collations differ): ask for all of them.
            if wanted is not None and page.token and mostly_others() and by_name(wanted - found.keys()):
                return found, prompts, True
        return found, prompts, mostly_others()

    def _requests(self, names: Collection[str]) -> int:
        """How many searches naming these models take on this server."""
        return len(names) if self._in_lists is False else len(list(filters.in_lists(sorted(names))))

    def _by_name(self, search: Callable[[str, str | None], Any], names: list[str]) -> list[Any]:
        """Everything `search` finds for the named models: by lists of names where the server takes them, else
        one name at a time (MLflow servers before 2.22 refuse lists), those requests side by side."""
        if not names:
            return []
        if self._in_lists is not False:
            try:
                found = [item for f in filters.in_lists(names) for page in self._pages(
                    functools.partial(search, f)) for item in page]
                self._in_lists = True
                return found
            except RegistryError as e:
                if e.code != "INVALID_PARAMETER_VALUE" or self._in_lists:
                    raise
                self._in_lists = False

        def one(name: str) -> list[Any]:
            return [item for page in self._pages(functools.partial(search, filters.equals(name))) for item in page]

        with ThreadPoolExecutor(max_workers=_PARALLEL_READS if self.parallel_writes else 1) as pool:
            return [item for items in pool.map(one, names) for item in items]

    def model_names(self, near: Collection[str] = ()) -> list[str]:
        """Some of the registry's model names, for a "did you mean" when the models `near` are missing: one page,
        and when the registry holds more, those that start like the first few of them (one search each)."""
        page = self._call(functools.partial(self._search_models, "", None))
        found = {rm.name for rm in page}
        for name in sorted(near)[:_NEAR] if page.token and self._filterable else ():
            with contextlib.suppress(RegistryError):  # a registry that cannot search so has the first page only
                found |= {rm.name for rm in self._call(functools.partial(
                    self._search_models, filters.starting(name[:_PREFIX]), None))}
        return sorted(found - {self.lease_model})

    def _search_versions(self, filter_string: str, token: str | None) -> Any:
        return self._client.search_model_versions(
            filter_string=filter_string or None, max_results=_PAGE_VERSIONS,
            order_by=None if self.unity else ["name ASC", "version_number ASC"], page_token=token)

    def _search_models(self, filter_string: str, token: str | None) -> Any:
        # The store itself, not the client: MLflow 3's client adds a prompt filter that 2.x servers answer with
        # no model at all. Prompts are dropped by their tag instead (_models).
        return self._client.store.search_registered_models(
            filter_string=filter_string or None, max_results=_PAGE_MODELS,
            order_by=None if self.unity else ["name ASC"], page_token=token)

    def run_metrics(self, run_ids: Collection[str]) -> dict[str, dict[str, float]]:
        """Each run's latest metrics, from the tracking server (a run that no longer exists has none)."""
        from mlflow.tracking._tracking_service.client import TrackingServiceClient

        tracking = TrackingServiceClient(self.tracking_uri)

        def one(run_id: str) -> tuple[str, dict[str, float]]:
            try:
                run = self._call(lambda: tracking.get_run(run_id))
            except RegistryError as e:
                if e.code == "RESOURCE_DOES_NOT_EXIST":
                    return run_id, {}
                raise
            return run_id, {str(k): float(v) for k, v in run.data.metrics.items()}

        with ThreadPoolExecutor(max_workers=_PARALLEL_READS if self.parallel_writes else 1) as pool:
            return dict(pool.map(one, sorted(run_ids)))

    def register_webhook(self, name: str, url: str, events: Sequence[str], secret: str,
                         description: str) -> tuple[str, bool]:
        """Create the webhook, or update the one of that name (url, events, secret, active): (its id, created)."""
        from mlflow.entities.webhook import WebhookEvent, WebhookStatus

        wanted = [WebhookEvent.from_str(e) for e in events]  # type: ignore[arg-type]  # checked by the server
        same = next((w for w in self._webhooks() if w.name == name), None)
        if same is not None:
            self._call(lambda: self._client.update_webhook(same.webhook_id, url=url, events=wanted, secret=secret,
                                                           description=description, status=WebhookStatus.ACTIVE))
            return str(same.webhook_id), False
        made = self._call(lambda: self._client.create_webhook(name=name, url=url, events=wanted, secret=secret,
                                                              description=description))
        return str(made.webhook_id), True

    def _webhooks(self) -> list[Any]:
        found: list[Any] = []
        try:
            for page in self._pages(lambda token: self._client.list_webhooks(page_token=token)):
                found += list(page)
        except RegistryError:
            server = self.server()
            release = re.fullmatch(r"MLflow server (\d+)\.(\d+)\b.*", server)
            if release and (int(release[1]), int(release[2])) < (3, 3):
                raise RegistryError(f"the registry at {self.display_uri} ({server}) has no webhooks: MLflow added "
                                    "them in 3.3. Upgrade the server, or keep proposing on a schedule (the "
                                    "stagectl-propose workflow runs hourly)") from None
            raise
        return found

    def transition(self, model: str, version: str, stage: Stage, archive_existing: bool) -> Stage:
        """Move a version; returns the stage the server reports for it afterwards."""
        mv = self._call(lambda: self._client.transition_model_version_stage(
            model, version, stage.value, archive_existing_versions=archive_existing))
        return Stage.parse(mv.current_stage)

    def describe_version(self, model: str, version: str | None = None, alias: str | None = None) -> VersionDetail:
        """One version in full (by number, or by alias): stage, aliases, run and tags."""
        if alias is not None:
            mv = self._call(lambda: self._client.get_model_version_by_alias(model, alias))
        else:
            mv = self._call(lambda: self._client.get_model_version(model, version))
        live = self._version(mv)
        return VersionDetail(live=live, aliases=tuple(sorted(mv.aliases or ())), tags=live.tags,
                             source=str(mv.source or ""))

    def load_pyfunc(self, uri: str) -> Any:
        """Load a model through mlflow.pyfunc from this registry (needs the full mlflow package)."""
        try:
            import mlflow
            import mlflow.pyfunc
        except ImportError:
            from .extras import install_hint

            raise ResolveError(f"loading a model needs the full mlflow package: {install_hint('serve')}") from None
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        # Setting the URIs also sets MLFLOW_*_URI in the environment, and setting back what get_*_uri() returned
        # would pin MLflow's defaults for the rest of the process: put back exactly what was there, unset included.
        saved = (tracking_utils._tracking_uri, registry_utils._registry_uri,
                 {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")})
        mlflow.set_tracking_uri(self.tracking_uri)  # models:/ and mlflow-artifacts:/ resolve against these
        mlflow.set_registry_uri(self.uri)
        try:
            return self._call(lambda: mlflow.pyfunc.load_model(uri))
        finally:
            tracking_utils._tracking_uri, registry_utils._registry_uri = saved[0], saved[1]
            for name, value in saved[2].items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def stage_of(self, model: str, version: str) -> Stage:
        mv = self._call(lambda: self._client.get_model_version(model, version))
        return Stage.parse(mv.current_stage)

    def set_alias(self, model: str, alias: str, version: str) -> None:
        self._call(lambda: self._client.set_registered_model_alias(model, alias, version))

    def delete_alias(self, model: str, alias: str) -> None:
        """Idempotent: MLflow answers a missing alias with success."""
        self._call(lambda: self._client.delete_registered_model_alias(model, alias))

    def delete_version_tag(self, model: str, version: str, key: str) -> None:
        """Idempotent: MLflow answers a missing tag with success."""
        self._call(lambda: self._client.delete_model_version_tag(model, version, self._key(key)))

    def alias_target(self, model: str, alias: str) -> str:
        mv = self._call(lambda: self._client.get_model_version_by_alias(model, alias))
        return str(mv.version)

    def set_tags(self, model: str, version: str, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self._call(functools.partial(self._client.set_model_version_tag, model, version, self._key(key), value))

    def mark_managed(self, model: str, tags: Mapping[str, str]) -> None:
        """Tag a registered model with who manages it: idempotent, and needs the same EDIT permission as the
        steps, so it is also the permission check before the model's first real write."""
        for key, value in tags.items():
            self._call(functools.partial(self._client.set_registered_model_tag, model, self._key(key), value))

    def create_lease(self, tags: Mapping[str, str]) -> bool:
        """Create the lease model; False when it exists already (MLflow's one atomic test-and-set)."""
        try:
            self._call(lambda: self._client.create_registered_model(
                self.lease_model, tags=dict(tags),
                description="Held by a running stagectl apply, deleted when it finishes. If no apply is running, "
                            "the next one takes it over once it has seen it unchanged for its ttl_seconds."))
        except RegistryError as e:
            # The name was taken. MLflow's store then reads the model to word its answer, and when the holder
            # deleted it in between, that read answers "does not exist": the lease was held, and is free now.
            if e.code in ("RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST"):
                return False
            raise
        return True

    def lease_holder(self) -> dict[str, str] | None:
        try:
            rm = self._call(lambda: self._client.get_registered_model(self.lease_model))
        except RegistryError as e:
            if e.code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return {str(k): str(v) for k, v in (rm.tags or {}).items()}

    def renew_lease(self, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self._call(functools.partial(self._client.set_registered_model_tag, self.lease_model, key, value))

    def drop_lease(self) -> None:
        try:
            self._call(lambda: self._client.delete_registered_model(self.lease_model))
        except RegistryError as e:
            if e.code != "RESOURCE_DOES_NOT_EXIST":
                raise

    def _key(self, key: str) -> str:
        return unity.tag_key(key) if self.unity else key

    def _tags(self, tags: Mapping[str, Any] | None) -> dict[str, str]:
        found = {str(k): str(v) for k, v in (tags or {}).items()}
        return unity.read_tags(found) if self.unity else found

    def _version(self, mv: Any) -> LiveVersion:
        live = _live_version(mv)
        return dataclasses.replace(live, tags=self._tags(live.tags)) if self.unity else live

    def _pages(self, fetch: Callable[[str | None], Any]) -> Iterator[Any]:
        token = None
        while True:
            page = self._call(functools.partial(fetch, token))
            yield page
            token = page.token
            if not token:
                return

    def _call(self, request: Callable[[], T]) -> T:
        """Run one request, turning MLflow's and the network's exceptions into a RegistryError."""
        from mlflow.exceptions import MlflowException

        try:
            return request()
        except MlflowException as e:
            raise self._error(str(e.message), e.error_code, e.get_http_status_code()) from None
        except (OSError, ConnectionError) as e:
            raise self._error(str(e), None, None) from None

    def _error(self, message: str, code: str | None, status: int | None) -> RegistryError:
        message = uris.scrub(message, self._secrets)
        if "Max retries exceeded" in message or ("Connection" in message and "refused" in message):
            cause = _network_cause(message)
            return RegistryError(f"cannot reach the registry at {self.display_uri}: {cause}",
                                 code=code, transient=True)
        if _not_mlflow_api(code, message):  # a wrong path: a 404 page, or the UI's HTML where JSON was due
            return RegistryError(f"the URI {self.display_uri} does not point at an MLflow server: what answered there "
                                 "does not speak MLflow's API. Check the URI's host, port and path (the server's root, "
                                 "where the MLflow UI is)", code=code)
        if "filesystem model registry backend" in message:  # MLflow took the URI for a local directory
            return RegistryError(f"{self.display_uri} is read by MLflow as a local directory, not a registry: use "
                                 "http(s)://HOST:PORT for a server or sqlite:///FILE for a database file", code=code)
        brief = message.splitlines()[0] if message else "no details"
        if status in (401, 403):
            brief = f"permission denied ({code}): {brief}"
        return RegistryError(f"registry {self.display_uri} answered {code or 'an error'}: {brief}",
                             code=code, transient=is_transient(status))


def is_transient(status: int | None) -> bool:
    """Throttling, timeouts and server errors may pass, so a write is tried again; any other answer will not."""
    return status is not None and (status in (408, 429) or status >= 500)


def _live_version(mv: Any) -> LiveVersion:
    return LiveVersion(version=str(mv.version), stage=Stage.parse(mv.current_stage), status=str(mv.status),
                       run_id=mv.run_id or None, created_ms=int(mv.creation_timestamp or 0),
                       updated_ms=int(mv.last_updated_timestamp or 0),
                       tags={str(k): str(v) for k, v in (mv.tags or {}).items()},
                       source=mv.source or None, user=mv.user_id or None)


def _preflight(uri: str, display: str) -> None:
    """Fail in seconds when nothing answers at the server's address (refused, unknown host, no route)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    if urllib.request.getproxies() and not urllib.request.proxy_bypass(parts.hostname):
        return  # requests go through a proxy: the server's own address need not be reachable from here
    port = parts.port or (443 if parts.scheme == "https" else 80)
    for attempt in range(2):
        try:
            socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT).close()
            return
        except socket.gaierror:
            raise RegistryError(f"cannot reach the registry at {display}: host name not found",
                                transient=True) from None
        except OSError as e:
            if attempt == 1:
                cause = "timed out" if isinstance(e, TimeoutError) else "connection refused"
                raise RegistryError(f"cannot reach the registry at {display}: {cause}", transient=True) from None
            time.sleep(1)


_NAME_IT = "Name the registry with --tracking-uri, MLFLOW_TRACKING_URI or registry.tracking_uri in the stages file"
_SQLITE_HEADER = b"SQLite format 3\x00"
_HOST_PORT = re.compile(r"[\w.-]+:\d+(/.*)?")


def _refuse_not_a_registry(uri: str, display: str) -> None:
    """Refuse, before MLflow opens it, what MLflow would misread or turn into a registry: it creates (and
    migrates) a database in a missing, empty or foreign sqlite file, and takes `host:port` for a directory."""
    if _HOST_PORT.fullmatch(uri):
        raise RegistryError(f"the registry URI {display} has no scheme, so MLflow would read it as a directory; "
                            f"for a server write http://{display} (or https://)")
    if not uri.startswith("sqlite:///"):
        return
    path = uri.removeprefix("sqlite:///").split("?", 1)[0]
    if not path or path == ":memory:":
        return
    problem = _not_an_mlflow_database(Path(path))
    if problem:
        raise RegistryError(f"no registry at {display}: {path} {problem}; nothing was written. {_NAME_IT}")


def _not_an_mlflow_database(path: Path) -> str | None:
    """Why a sqlite file is not an MLflow registry (None when it is one), read without changing a byte."""
    try:
        with path.open("rb") as fh:
            header = fh.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return "does not exist"
    except IsADirectoryError:
        return "is a directory"
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    if not header:
        return "is an empty file, not an MLflow database"
    if header != _SQLITE_HEADER:
        return "is not a SQLite database"
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as e:
        return f"cannot be read as a SQLite database ({e})"
    return None if "registered_models" in tables else "is a SQLite database without MLflow's tables"


def _not_mlflow_api(code: str | None, message: str) -> bool:
    return (code == "ENDPOINT_NOT_FOUND" or "not in a valid JSON format" in message
            or "<!doctype html" in message.lower() or "<html" in message.lower())


def _network_cause(message: str) -> str:
    if m := re.search(r"too many (\d+) error responses", message):
        return f"HTTP {m[1]} on every try"
    for pattern, cause in (
        (r"Connection refused|NewConnectionError", "connection refused"),
        (r"timed out|ReadTimeout|ConnectTimeout", "timed out"),
        (r"Name or service not known|nodename nor servname|getaddrinfo", "host name not found"),
        (r"RemoteDisconnected|Connection aborted|reset by peer", "connection dropped"),
        (r"SSLError|CERTIFICATE", "TLS error"),
    ):
        if re.search(pattern, message):
            return cause
    return "network error"
