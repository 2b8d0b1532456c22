"""Everything that touches git (through gitpython): the file at a ref, provenance, history, branches."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from . import paths
from .errors import ControllerError


class GitError(ControllerError):
    """A git operation the user asked for cannot be done (no repository, unknown ref, dirty file, ...)."""


@dataclass(frozen=True, slots=True)
class Commit:
    sha: str
    author: str
    date: str  # ISO 8601, the author date
    subject: str
    committed: str = ""  # ISO 8601, the committer date: when it was merged or rebased, not when first written


OUTSIDE_GIT = "none (applied outside git with --allow-dirty)"
UNCOMMITTED = " (applied with uncommitted changes to the stages file)"
FULL_HISTORY = "check out the full history (actions/checkout: fetch-depth: 0; locally: git fetch --unshallow)"


class ShallowCloneError(GitError):
    """The history a command needs is cut off by a shallow clone, and could not be fetched."""


@dataclass(frozen=True, slots=True)
class Provenance:
    """Why a write happened, per model: the commit that last changed the model's declaration (the one that
    decided), and the commit checked out when it was applied. `applied` is None outside git (--allow-dirty)."""

    applied: Commit | None
    decided: Mapping[str, Commit] = field(default_factory=dict)  # model → last commit changing its declaration
    uncommitted: frozenset[str] = frozenset()  # models whose declaration differs from HEAD in the working tree
    run_url: str | None = None
    outside: str = OUTSIDE_GIT  # what the tags say in place of a commit when there is none
    web: str | None = None  # the repository's web page (https://host/owner/repo), when known: a commit link

    @property
    def applied_sha(self) -> str:
        return self.applied.sha if self.applied else ""

    def tags_for(self, model: str) -> dict[str, str]:
        """The tags to set on every version of `model` that a write changes."""
        if self.applied is None:
            tags = {"stagectl.commit": self.outside, "stagectl.commit_author": "none",
                    "stagectl.commit_subject": "none", "stagectl.applied_commit": self.outside}
        else:
            decided = self.applied if model in self.uncommitted else self.decided.get(model, self.applied)
            subject = decided.subject + (UNCOMMITTED if model in self.uncommitted else "")
            tags = {"stagectl.commit": decided.sha, "stagectl.commit_author": decided.author,
                    "stagectl.commit_subject": subject[:5000], "stagectl.applied_commit": self.applied.sha}
            if self.web and model not in self.uncommitted:  # a link from the version's page to the change
                tags["stagectl.commit_url"] = f"{self.web}/commit/{decided.sha}"
        if self.run_url:
            tags["stagectl.run_url"] = self.run_url
        return tags


class Checkout:
    """The git repository that holds a stages file."""

    def __init__(self, file: Path) -> None:
        import git

        # The file as named, not what a symlink points to: git tracks the link, and a link may lead anywhere.
        lexical = Path(os.path.abspath(file))
        start = next((p for p in lexical.parents if p.is_dir()), lexical.parent)  # init may name a new folder
        try:
            self._repo = git.Repo(start, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise GitError(f"{file} is not inside a git repository") from None
        root = Path(self._repo.working_tree_dir or ".").resolve()
        try:
            self.path = (lexical.parent.resolve() / lexical.name).relative_to(root).as_posix()
        except ValueError:
            raise GitError(f"{file} is not inside the git repository at {root}") from None
        self.root = root

    @classmethod
    def find(cls, file: Path) -> Checkout | None:
        try:
            return cls(file)
        except GitError:
            return None

    def read_at(self, ref: str) -> str | None:
        """The file's text at a ref, or None when the file does not exist there."""
        import git

        try:
            commit = self._repo.commit(ref)
        except (git.BadName, ValueError, git.GitCommandError):
            hint = f" (this is a shallow clone: {FULL_HISTORY})" if self.is_shallow() else ""
            raise GitError(f"unknown git ref '{ref}'{hint}") from None
        return _text_at(commit, self.path)

    def tracked(self) -> bool:
        """Whether git tracks the file (it is in the index)."""
        return bool(self._repo.git.ls_files("--", self.path).strip())

    def is_dirty(self) -> bool:
        """Whether the file differs from HEAD, in the index or the working tree, or is untracked."""
        if self.path in self._repo.untracked_files:
            return True
        if not self._repo.head.is_valid():
            return True
        return bool(self._repo.git.status("--porcelain", "--", self.path).strip())

    def identity(self) -> str:
        """Which stages file this is, the same from any clone: `host/owner/repo:path`, from the remote
        (origin, else the first), without credentials or scheme; the repository's folder where it has none."""
        url = self._remote_url()
        return f"{_repository_name(url) if url else self.root.as_posix()}:{self.path}"

    def _remote_url(self) -> str | None:
        """The URL of the remote that names the repository: origin, else the first; None without one."""
        remotes = {r.name: r for r in self._repo.remotes}
        remote = remotes.get("origin") or next(iter(remotes.values()), None)
        return next(iter(remote.urls), None) if remote is not None else None

    def web_url(self, environ: Mapping[str, str] = os.environ) -> str | None:
        """The repository's web page, for links from the registry to a commit: GitHub Actions names it; else
        an https or ssh remote on a host (the same path on https://host/...); None for a local remote."""
        if environ.get("GITHUB_SERVER_URL") and environ.get("GITHUB_REPOSITORY"):
            return f"{environ['GITHUB_SERVER_URL'].rstrip('/')}/{environ['GITHUB_REPOSITORY']}"
        url = self._remote_url()
        if not url or not re.match(r"^(https?|ssh|git)://|^[^/@:]+@[^/:]+:", url):
            return None
        name = _repository_name(url)
        host = name.split("/", 1)[0]
        path = name.split("/", 1)[1] if "/" in name else ""
        if url.startswith(("http://", "https://")):  # the web server is the one cloned from, port and all
            return f"{url.split('://', 1)[0]}://{host}/{path}" if path else None
        host = host.split(":", 1)[0]  # an ssh port is not the web server's
        return f"https://{host}/{path}" if host and path and "." in host else None

    def current_branch(self) -> str | None:
        """The branch checked out; None on a detached HEAD."""
        found: str = self._repo.git.branch("--show-current")
        return found or None

    def has_commits(self) -> bool:
        return bool(self._repo.head.is_valid())

    def head(self) -> Commit:
        if not self._repo.head.is_valid():
            raise GitError("the repository has no commits yet")
        return _commit(self._repo.head.commit)

    def last_change_at(self, ref: str) -> str | None:
        """The newest commit at or before `ref` that changed the file; None when git does not know `ref`."""
        import git

        if not re.fullmatch(r"[0-9a-f]{7,64}", ref):  # a tag value from the registry: never an option to git
            return None
        try:
            found: str = self._repo.git.rev_list("-1", ref, "--", self.path)
        except git.GitCommandError:
            return None
        return found or None

    def is_shallow(self) -> bool:
        return bool(self._repo.git.rev_parse("--is-shallow-repository") == "true")

    def history(self, needed_for: str = "this command") -> Iterator[tuple[Commit, str | None, str | None]]:
        """(commit, file before, file after) for each commit that changed the file, newest first.

        A shallow clone (actions/checkout's default) has its history cut off: it is fetched from the remote
        when one is configured, and otherwise GitError says how to get it.
        """
        self._unshallow(needed_for)
        try:
            for c in self._repo.iter_commits(paths=self.path):
                after = _text_at(c, self.path)
                before = _text_at(c.parents[0], self.path) if c.parents else None
                yield _commit(c), before, after
        except ValueError as e:  # a missing object: a graft boundary or a partial clone
            raise ShallowCloneError(f"the git history of {self.path} is incomplete ({e}); {needed_for} needs it: "
                                    f"{FULL_HISTORY}") from None

    def _unshallow(self, needed_for: str) -> None:
        import git

        if not self.is_shallow():
            return
        if self._repo.remotes:
            try:  # never prompt for credentials: CI has no one to answer
                self._repo.git.fetch("--unshallow", "--quiet", env={"GIT_TERMINAL_PROMPT": "0"})
            except git.GitCommandError:
                pass
            else:
                return
        raise ShallowCloneError(f"{self.root} is a shallow clone and its history could not be fetched; "
                                f"{needed_for} needs the history of {self.path}: {FULL_HISTORY}")

    def commit_on_new_branch(self, branch: str, text: str, message: str, *, replace: bool = False) -> Commit:
        """Create `branch` at HEAD, switch to it, and commit `text` as the file: nothing else goes in.

        With `replace`, an existing branch of that name is reset to HEAD first (a proposal updated in place).
        """
        import git

        _check_branch_name(self._repo, branch)
        if not replace and branch in [h.name for h in self._repo.heads]:
            raise GitError(f"branch '{branch}' already exists; choose another name with --branch")
        paths.check_write(self.root / self.path, self.path)
        try:
            self._repo.git.switch("-C" if replace else "-c", branch)
            (self.root / self.path).write_text(text, encoding="utf-8")
            self._repo.git.add("--", self.path)
            self._repo.git.commit("-m", message, "--", self.path)
        except git.GitCommandError as e:
            raise GitError(f"could not commit on new branch '{branch}': {_failure(e)}") from None
        return self.head()

    def proposal_text(self, branch: str, remote: str = "origin") -> str | None:
        """The file as a proposal branch has it: the local branch, else the remote's as last fetched (a CI
        checkout has only that); None when neither exists."""
        import git

        for ref in (f"refs/heads/{branch}", f"refs/remotes/{remote}/{branch}"):
            try:
                tip = self._repo.commit(ref)
            except (git.BadName, ValueError, git.GitCommandError):
                continue
            return _text_at(tip, self.path) or ""
        return None

    def propose_on_branch(self, branch: str, text: str, message: str) -> Commit:
        """Make `branch` one commit on top of HEAD that sets the file to `text`, without switching to it: the
        working tree, the index and the branch checked out are not touched. An existing branch is replaced
        (a newer proposal supersedes the old one); when another run moved it meanwhile, this fails instead."""
        import tempfile

        import git

        _check_branch_name(self._repo, branch)
        if self.current_branch() == branch:
            raise GitError(f"'{branch}' is checked out: run from the branch the proposal starts from (e.g. main)")
        old = self._tip(f"refs/heads/{branch}")
        with tempfile.TemporaryDirectory(prefix="stagectl-") as scratch:
            index, body, message_file = (Path(scratch) / n for n in ("index", "file", "message"))
            body.write_text(text, encoding="utf-8")
            message_file.write_text(message, encoding="utf-8")
            env = {"GIT_INDEX_FILE": str(index), "GIT_TERMINAL_PROMPT": "0"}  # a scratch index: the real one stays
            try:
                blob = self._repo.git.hash_object("-w", "--", str(body)).strip()
                listed = self._repo.git.ls_tree("HEAD", "--", self.path).split()
                mode = listed[0] if listed and listed[0] in ("100644", "100755") else "100644"
                self._repo.git.read_tree("HEAD", env=env)
                self._repo.git.update_index("--add", "--cacheinfo", f"{mode},{blob},{self.path}", env=env)
                tree = self._repo.git.write_tree(env=env).strip()
                sha = self._repo.git.commit_tree(tree, "-p", "HEAD", "-F", str(message_file)).strip()
                # Compare-and-swap on the ref: two runs proposing at once cannot silently overwrite each other.
                # An empty old value: the branch must not exist yet.
                self._repo.git.update_ref("-m", "stagectl propose", f"refs/heads/{branch}", sha, old)
            except git.GitCommandError as e:
                raise GitError(f"could not commit the proposal on branch '{branch}': {_failure(e)}") from None
        return _commit(self._repo.commit(sha))

    def _tip(self, ref: str) -> str:
        """The commit a ref points at; "" when there is no such ref."""
        found: str = self._repo.git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}", with_exceptions=False)
        return found.strip()

    def push(self, remote: str, branch: str) -> bool:
        """Send a proposal branch to `remote` when it differs from the remote's copy as last fetched; whether it
        was sent. It replaces the remote's copy only if that is still the one last fetched (a lease): another
        writer's newer proposal is never overwritten."""
        import git

        _check_remote_name(remote)
        mine, theirs = self._tip(f"refs/heads/{branch}"), self._tip(f"refs/remotes/{remote}/{branch}")
        if not mine or mine == theirs:
            return False
        try:
            self._repo.git.push("--quiet", f"--force-with-lease=refs/heads/{branch}:{theirs}", remote,
                                f"refs/heads/{branch}:refs/heads/{branch}", env={"GIT_TERMINAL_PROMPT": "0"})
            self._repo.git.update_ref(f"refs/remotes/{remote}/{branch}", mine)  # as a fetch would record it
        except git.GitCommandError as e:
            raise GitError(f"could not push '{branch}' to '{remote}': {_failure(e)}") from None
        return True

    def sync(self, remote: str) -> str | None:
        """Fast-forward the branch checked out to the remote's, so that proposals start from what is merged
        there; a reason when it cannot (the checkout is left as it is)."""
        import git

        _check_remote_name(remote)
        branch = self.current_branch()
        if branch is None:
            return "the checkout is on a detached HEAD"
        try:
            self._repo.git.fetch("--quiet", remote, env={"GIT_TERMINAL_PROMPT": "0"})
            self._repo.git.merge("--ff-only", "--quiet", f"refs/remotes/{remote}/{branch}")
        except git.GitCommandError as e:
            return _failure(e)
        return None


def _failure(e: Exception) -> str:
    """The last line of what a failed git command said: the one that names the problem."""
    detail = str(getattr(e, "stderr", "")).strip().strip("'").strip() or f"git exited with {getattr(e, 'status', '?')}"
    return detail.splitlines()[-1]


def _check_remote_name(remote: str) -> None:
    if not remote or remote.startswith("-"):
        raise GitError(f"'{remote}' is not a git remote's name (see git remote -v)")


def _check_branch_name(repo: object, branch: str) -> None:
    """A name for a new branch, taken as written: git would expand `@{-1}` (the previous branch) and store
    `refs/heads/x` as refs/heads/refs/heads/x; an option-like name could be read as an option."""
    import git

    if branch.startswith("refs/"):
        raise GitError(f"'{branch}' is a full ref name; give the branch's name alone, such as "
                       f"'{branch.removeprefix('refs/heads/')}'")
    if branch.startswith("-") or "@{" in branch or branch in ("@", "HEAD"):
        raise GitError(f"'{branch}' is not a name for a new branch (git reads it as an option or a reference to "
                       "another branch); choose a plain name such as 'promote-fraud-v2'")
    try:
        expanded = str(repo.git.check_ref_format("--branch", branch)).strip()  # type: ignore[attr-defined]
    except git.GitCommandError:
        raise GitError(f"'{branch}' is not a valid branch name; choose a plain name such as 'promote-fraud-v2'") \
            from None
    if expanded != branch:
        raise GitError(f"git expands '{branch}' to '{expanded}'; give the new branch's own name")


def tag_commit(url: str, tag: str, timeout: float = 10) -> str | None:
    """The commit a remote repository's tag points at (`git ls-remote`), or None when it cannot be asked."""
    import subprocess

    try:
        found = subprocess.run(["git", "ls-remote", "--", url, f"refs/tags/{tag}^{{}}", f"refs/tags/{tag}"],
                               capture_output=True, text=True, timeout=timeout,
                               env={**os.environ, "GIT_TERMINAL_PROMPT": "0"}, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    refs = {ref: sha for sha, _, ref in (line.partition("\t") for line in found.stdout.splitlines())}
    commit = refs.get(f"refs/tags/{tag}^{{}}") or refs.get(f"refs/tags/{tag}")  # an annotated tag's commit first
    return commit if found.returncode == 0 and commit and re.fullmatch(r"[0-9a-f]{40}", commit) else None


def run_url(environ: Mapping[str, str] = os.environ) -> str | None:
    """The GitHub Actions run applying this, from the variables GitHub sets."""
    parts = [environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    if not all(parts):
        return None
    server, repository, run_id = parts
    return f"{server}/{repository}/actions/runs/{run_id}"


def _repository_name(url: str) -> str:
    """A remote URL as one name for every way of cloning it: https://user:token@github.com/a/b.git,
    ssh://git@github.com/a/b and git@github.com:a/b.git are all github.com/a/b."""
    if "://" in url:
        parts = urlsplit(url)
        host = parts.hostname or ""
        name = (host + (f":{parts.port}" if parts.port else "") + parts.path) if host else parts.path
    elif re.match(r"^[^/@]+@[^/:]+:", url) or re.match(r"^[^/:]+:[^/]", url):  # scp-like: [user@]host:path
        host, path = url.split("@", 1)[-1].split(":", 1)
        name = f"{host}/{path}"
    else:
        name = url
    return name.rstrip("/").removesuffix(".git")


def _commit(c: object) -> Commit:
    sha: str = c.hexsha  # type: ignore[attr-defined]
    author = c.author  # type: ignore[attr-defined]
    date: str = c.authored_datetime.isoformat()  # type: ignore[attr-defined]
    subject = str(c.message).splitlines()[0] if c.message else ""  # type: ignore[attr-defined]
    committed: str = c.committed_datetime.isoformat()  # type: ignore[attr-defined]
    return Commit(sha=sha, author=f"{author.name} <{author.email}>", date=date, subject=subject, committed=committed)


def _text_at(commit: object, path: str) -> str | None:
    try:
        blob = commit.tree / path  # type: ignore[attr-defined]
    except KeyError:
        return None
    data: bytes = blob.data_stream.read()
    return data.decode("utf-8", errors="replace")
