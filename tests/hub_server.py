"""A minimal Hugging Face Hub on 127.0.0.1, for tests of `hf://` preset handles.

It implements what huggingface_hub's `snapshot_download` / `hf_hub_download` call (read from
huggingface_hub 2.4.0's sources; the `siblings` answer also serves older versions):

- `GET /api/models/{org}/{name}[/revision/{rev}]`: the model info, JSON with `id`, `sha` (the
  commit the revision points at) and `siblings` ([{"rfilename"}]);
- `GET /api/models/{org}/{name}/tree/{rev}[/{path}]`: the file listing, a JSON list of
  {"type": "file", "path", "size", "oid"} (+ "lfs": {"oid" (sha256), "size", "pointerSize"} for
  .h5 and .png files, which the Hub stores with LFS), one page (no `Link` header);
- `HEAD` and `GET /{org}/{name}/resolve/{rev}/{path}`: the file, with `X-Repo-Commit`, `ETag`
  (the sha256 of an LFS file, else its git blob id) and `Content-Length`.

Errors are 404s with the `X-Error-Code` header huggingface_hub maps to its exceptions:
`RepoNotFound` (RepositoryNotFoundError), `RevisionNotFound` (RevisionNotFoundError) and
`EntryNotFound` (RemoteEntryNotFoundError, sent with `X-Repo-Commit`).

Revisions are branches or tags (`refs`: name -> commit) or 40-hex commit ids. `unserved` holds
(repo, path) pairs that the listing shows but `resolve` answers 404 EntryNotFound; `tampered`
maps (repo, path) to bytes served instead of the listed ones (same headers); `failing` maps a
repo to an HTTP status every request about it gets (a Hub that is down). `requests` records
(method, path) of every request.
"""

import contextlib
import hashlib
import http.server
import json
import threading
import urllib.parse

from conftest import serving

LFS_SUFFIXES = (".h5", ".png")


def _git_blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Hub:
    """Repositories in memory: `add` commits files, `tag` names a commit; `serve()` runs the server."""

    def __init__(self):
        self.repos = {}  # repo id -> {"refs": {name: commit}, "commits": {commit: {path: bytes}}}
        self.unserved = set()
        self.tampered = {}
        self.failing = {}
        self.requests = []
        self.lock = threading.Lock()

    def add(self, repo, files, branch="main"):
        """Commit `files` ({path: bytes}) to `branch` of `repo` (created if new); the commit id."""
        digest = hashlib.sha1(repo.encode())
        for path in sorted(files):
            digest.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
        commit = digest.hexdigest()
        with self.lock:
            entry = self.repos.setdefault(repo, {"refs": {}, "commits": {}})
            entry["commits"][commit] = dict(files)
            entry["refs"][branch] = commit
        return commit

    def tag(self, repo, name, commit):
        with self.lock:
            self.repos[repo]["refs"][name] = commit

    def count(self, method=None, contains=""):
        """How many requests were made (of `method`, with `contains` in the path)."""
        with self.lock:
            return sum(1 for m, p in self.requests if (method is None or m == method) and contains in p)

    @contextlib.contextmanager
    def serve(self):
        """Run the Hub in a thread on a free port of 127.0.0.1; yields its base URL (for HF_ENDPOINT)."""
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                hub._answer(self, body=True)

            def do_HEAD(self):
                hub._answer(self, body=False)

            def log_message(self, *args):
                pass

        with serving(Handler) as url:
            yield url

    # ------------------------------------------------------------------------- the endpoints
    def _answer(self, request, body):
        path = urllib.parse.urlsplit(request.path).path
        with self.lock:
            self.requests.append((request.command, path))
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            repo, rest = "/".join(parts[2:4]), parts[4:]
            if not rest or (rest[0] == "revision" and len(rest) == 2):
                return self._info(request, repo, rest[1] if rest else "main", body)
            if rest[0] == "tree" and len(rest) >= 2:
                return self._tree(request, repo, rest[1], "/".join(rest[2:]), body)
        elif len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve(request, "/".join(parts[:2]), parts[3], "/".join(parts[4:]), body)
        self._send(request, 404, {"error": "Not Found"}, body)

    def _commit(self, request, repo, revision, body):
        """(commit, files) of `revision` of `repo`, or None after answering 404."""
        with self.lock:
            if repo in self.failing:
                self._send(request, self.failing[repo], {"error": "the Hub is down"}, body)
                return None
            entry = self.repos.get(repo)
            if entry is None:
                self._send(request, 404, {"error": "Repository not found"}, body, {"X-Error-Code": "RepoNotFound"})
                return None
            commit = entry["refs"].get(revision) or (revision if revision in entry["commits"] else None)
            if commit is None:
                self._send(
                    request, 404, {"error": f"Invalid rev id: {revision}"}, body, {"X-Error-Code": "RevisionNotFound"}
                )
                return None
            return commit, entry["commits"][commit]

    def _info(self, request, repo, revision, body):
        found = self._commit(request, repo, revision, body)
        if found:
            commit, files = found
            self._send(
                request,
                200,
                {
                    "id": repo,
                    "modelId": repo,
                    "sha": commit,
                    "private": False,
                    "siblings": [{"rfilename": p} for p in sorted(files)],
                },
                body,
            )

    def _tree(self, request, repo, revision, folder, body):
        found = self._commit(request, repo, revision, body)
        if found:
            _, files = found
            listing = []
            for path in sorted(files):
                if folder and not path.startswith(folder.rstrip("/") + "/"):
                    continue
                data = files[path]
                item = {"type": "file", "path": path, "size": len(data), "oid": _git_blob_id(data)}
                if path.endswith(LFS_SUFFIXES):
                    item["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
                listing.append(item)
            self._send(request, 200, listing, body)

    def _resolve(self, request, repo, revision, filename, body):
        found = self._commit(request, repo, revision, body)
        if not found:
            return
        commit, files = found
        if filename not in files or (repo, filename) in self.unserved:
            return self._send(
                request,
                404,
                {"error": "Entry not found"},
                body,
                {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit},
            )
        data = files[filename]
        etag = hashlib.sha256(data).hexdigest() if filename.endswith(LFS_SUFFIXES) else _git_blob_id(data)
        served = self.tampered.get((repo, filename), data)
        request.send_response(200)
        request.send_header("Content-Type", "application/octet-stream")
        request.send_header("Content-Length", str(len(served)))
        request.send_header("ETag", f'"{etag}"')
        request.send_header("X-Repo-Commit", commit)
        request.end_headers()
        if body:
            request.wfile.write(served)

    @staticmethod
    def _send(request, status, payload, body, headers=None):
        data = json.dumps(payload).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        if body:
            request.wfile.write(data)
