"""The gateway's history store: requests, their audit trails and camera incidents in SQLite.

One file per gateway process on local disk (GATEWAY_STORE_PATH), rebuilt from the topics and
never the source of truth: every replica builds its own, so replicas stay interchangeable.

    requests(request_id, version, opd_code, category, status, submitted_by, listing_time,
             subject_id, updated_time, body = ServiceRequest without contact fields, contact =
             the sealed contact (EncryptedContact) as the topic carried it, NULL when none or
             dropped; a plaintext reporter is never stored)
        indexes: request_id (GetRequest; unique: one row per request; a rebuild's workers
                 append the state topic without it, see append_requests),
                 (listing_time, request_id) city-wide listing,
                 (opd_code | status, listing_time, request_id) per OPD, per closing status,
                 subject_id (erasure and retention find a contact's requests); a rebuild
                 into an empty store builds all but the first after the rows (build_indexes)
    events(request_id, event_key, position = where the event topic holds the event (the same
           in every replica: page tokens carry it), body = RequestEvent without its request's
           history and contact fields)          unique index (request_id, event_key): trail +
                                                dedup; a rebuild into an empty store builds it
                                                once the event topic is read (build_trail_index)
    incidents(incident_id, phase, resolved_time, body)
    request_counts(opd_code, category, status, submitted_by, n)   ListRequests' total_size
    appended_deletes(request_id, upto)          while requests are appended: tombstones (the
                                                request's rows up to rowid `upto` go)
    offsets(topic, partition, next_offset,      what the rows above hold, per partition, and
            last_record)                        the mark of the last record read (see mark_of)
    meta(key, value)                            schema version, the topics and the Kafka
                                                cluster it was built from; `rebuilding`: the
                                                boot id of the machine rebuilding it unsynced

The projector is the only writer: one transaction per batch holds the rows *and* the offsets
they came from, so after a crash the rows are never ahead of or behind the checkpoint. Reads go
through a second connection and see committed batches only (WAL: readers never wait for the
writer). A store that fails its integrity check, has another schema version, was built from
other topics or another Kafka cluster, or whose checkpoint is ahead of a topic's end is set
aside (renamed, one copy kept) and rebuilt from the beginning of the topics.

A rebuild from the beginning writes without fsync (`synchronous=OFF`) and with a larger page
cache: a killed process loses nothing SQLite committed (the OS holds the pages), and the next
start resumes the rebuild from its checkpoint; only the machine going down could lose committed
pages, so the store is marked with the machine's boot id until the rebuild ends, and a store
marked by another boot is set aside and rebuilt.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import itertools
import json
import logging
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from google.protobuf.message import DecodeError

from gateway.core.history import (
    CountKey,
    Known,
    ListingKey,
    RequestBatch,
    RequestFilter,
    StoredEvent,
    TrailRow,
    listing_time,
    stored_parts,
    with_contact,
)
from smartcity.codec import from_timestamp, to_timestamp
from smartcity.v1 import camera_pb2, requests_pb2

log = logging.getLogger(__name__)

# 3: 32 KiB pages; rows of finished requests rebuilt before it lack their subject_id.
# 4: the trail's and the requests' unique indexes are named indexes (a rebuild drops them), not
# the tables' constraints; appended_deletes.
# 5: events.position, the event's place in the topic (trail_position), for what was the rowid.
SCHEMA_VERSION = 5
RESOLVED = camera_pb2.INCIDENT_PHASE_RESOLVED
# Variables per `IN (...)` lookup (SQLite allows far more; this keeps statements small).
_LOOKUP_CHUNK = 500
# (request id, version) pairs per `newer_than_stored` statement: two variables each, within the
# 999 of the oldest SQLite builds.
_COMPARE_CHUNK = 450
_BUSY_TIMEOUT_MS = 60_000
# Bytes per page of a new file (SQLite's default is 4 KiB). A rebuild appends millions of rows
# of a few hundred bytes and their index entries: larger pages mean fewer page splits and b-tree
# levels, about a third less CPU per row; a read of a trail or a page of a listing touches the
# same few pages either way.
_PAGE_SIZE = 32768
# The page cache while rebuilding, times the configured one.
_REBUILD_CACHE_FACTOR = 4
# Pages of the write-ahead log before it is copied into the file: SQLite's default (1,000)
# when live; while rebuilding about 100 MiB, so that index pages a rebuild changes over and
# over are copied once per checkpoint.
_CHECKPOINT_PAGES = 1000
_REBUILD_CHECKPOINT_PAGES = 100 * 2**20 // _PAGE_SIZE
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")

Partition = tuple[str, int]  # (full topic name, partition)

# One row per request, and what GetRequest and every upsert find a request by. A rebuild's workers
# read the state topic into an empty store without it (`append_requests`): ids are hashes, so a
# batch's rows land all over the index as they do in the trail's. `settle_requests` then keeps
# each request's row as the upserts would have, and builds it.
_REQUEST_INDEX = ("requests_id", "requests (request_id)")

# The trail's index: a request's events, and what makes an event delivered twice the same event
# (the trail keeps its first arrival: INSERT OR IGNORE). A rebuild into an empty store drops it
# too, appends the events as they come, and builds it once they are all in (`build_trail_index`):
# request ids are hashes, so each batch's entries land all over the index, and every batch's
# commit rewrote most of its pages (offline, 600,000 events of 100,000 requests with ids as
# citizen-requests makes them: 6.1 s of CPU with the index, 1.9 s without and 1.4 s to build it).
_TRAIL_INDEX = ("events_trail", "events (request_id, event_key)")

_SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE offsets (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL, last_record TEXT,
    PRIMARY KEY (topic, partition)) WITHOUT ROWID;
CREATE TABLE requests (
    request_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    opd_code TEXT NOT NULL,
    category TEXT NOT NULL,
    status INTEGER NOT NULL,
    submitted_by TEXT NOT NULL,
    listing_time REAL NOT NULL,
    subject_id TEXT,
    updated_time REAL NOT NULL,
    body BLOB NOT NULL,
    contact BLOB);
CREATE TABLE events (
    request_id TEXT NOT NULL, event_key TEXT NOT NULL, position INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE appended_deletes (request_id TEXT NOT NULL, upto INTEGER NOT NULL);
CREATE UNIQUE INDEX {_REQUEST_INDEX[0]} ON {_REQUEST_INDEX[1]};
CREATE UNIQUE INDEX {_TRAIL_INDEX[0]} ON {_TRAIL_INDEX[1]};
CREATE TABLE incidents (
    incident_id TEXT PRIMARY KEY, phase INTEGER NOT NULL, resolved_time REAL NOT NULL,
    body BLOB NOT NULL);
CREATE INDEX incidents_phase ON incidents (phase, resolved_time);
CREATE TABLE request_counts (
    opd_code TEXT NOT NULL, category TEXT NOT NULL, status INTEGER NOT NULL,
    submitted_by TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (opd_code, category, status, submitted_by)) WITHOUT ROWID;
"""

# The requests' listing and subject indexes. A rebuild into an empty store drops them and builds
# them once the requests are in (`build_indexes`): one sort per index costs about a third of
# keeping four indexes up to date row by row, and the rebuild's writers take turns at the file,
# so every microsecond a row's write holds it is waited for by the other writers.
_LISTING_INDEXES = {
    "requests_city": "requests (listing_time, request_id)",
    "requests_opd": "requests (opd_code, listing_time, request_id)",
    "requests_status": "requests (status, listing_time, request_id)",
    "requests_subject": "requests (subject_id) WHERE subject_id IS NOT NULL",
}


# What `settle_requests` deletes: the rows that tombstones appended after them delete...
_DELETE_TOMBSTONED = """
DELETE FROM requests WHERE rowid IN (
    SELECT requests.rowid FROM appended_deletes JOIN requests USING (request_id)
    WHERE requests.rowid <= appended_deletes.upto)
"""
# ... then, of a request's rows, all but its newest version's first arrival (as `plan_requests`
# keeps it: an older version, or the same one again, arriving later changes nothing).
_DROP_SUPERSEDED = """
DELETE FROM requests WHERE rowid IN (
    SELECT rowid FROM (
        SELECT rowid, row_number() OVER (PARTITION BY request_id ORDER BY version DESC, rowid) AS kept
        FROM requests)
    WHERE kept > 1)
"""
_RECOUNT = """
INSERT INTO request_counts (opd_code, category, status, submitted_by, n)
SELECT opd_code, category, status, submitted_by, count(*) FROM requests
GROUP BY opd_code, category, status, submitted_by
"""

# Before the trail's index is built where the rows hold an event twice: its copies after the first.
_DROP_LATER_COPIES = """
DELETE FROM events WHERE rowid IN (
    SELECT rowid FROM (
        SELECT rowid, row_number() OVER (PARTITION BY request_id, event_key ORDER BY position) AS arrival
        FROM events)
    WHERE arrival > 1)
"""

# The page cache (and so the in-memory sort) of an index build.
_INDEX_BUILD_CACHE_MIB = 32
# Threads an index build sorts on (SQLite's worker threads; the calling one is one of them).
_INDEX_BUILD_THREADS = min(4, os.cpu_count() or 1)

# Rows per INSERT statement (`_insert`): one statement of many rows costs a third less per row
# than a statement per row (executemany), which binds, steps and resets a statement per row.
_ROWS_PER_INSERT = 50

_INSERT_REQUEST = """
INSERT INTO requests (request_id, version, opd_code, category, status, submitted_by, listing_time,
                      subject_id, updated_time, body, contact)"""
_ON_CONFLICT_REQUEST = """
ON CONFLICT (request_id) DO UPDATE SET
    version = excluded.version, opd_code = excluded.opd_code, category = excluded.category,
    status = excluded.status, submitted_by = excluded.submitted_by,
    listing_time = excluded.listing_time, subject_id = excluded.subject_id,
    updated_time = excluded.updated_time, body = excluded.body, contact = excluded.contact
"""
_INSERT_EVENT = "INSERT OR IGNORE INTO events (request_id, event_key, position, body)"
# A new version of a request the listings already place right: SQLite then updates only the
# indexes of the columns set here (the status index), not the listing ones.
_UPDATE_REQUEST = """
UPDATE requests SET version = ?, status = ?, subject_id = ?, updated_time = ?, body = ?, contact = ?
WHERE request_id = ?
"""

# A redelivered "opened" never overwrites the incident's resolution (as in the memory view).
_UPSERT_INCIDENT = f"""
INSERT INTO incidents (incident_id, phase, resolved_time, body) VALUES (?, ?, ?, ?)
ON CONFLICT (incident_id) DO UPDATE SET
    phase = excluded.phase, resolved_time = excluded.resolved_time, body = excluded.body
WHERE NOT (incidents.phase = {RESOLVED} AND excluded.phase != {RESOLVED})
"""

_ADD_COUNT = """
INSERT INTO request_counts (opd_code, category, status, submitted_by, n) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (opd_code, category, status, submitted_by) DO UPDATE SET n = n + excluded.n
"""


class StoreLocked(RuntimeError):
    """Another process uses the store file (each gateway process needs its own)."""


class HistoryStore:
    """The SQLite file: opened (checked, set aside when unusable), written in batches, read."""

    def __init__(
        self, path: Path, topics: Sequence[str], cache_mib: int = 32, check_at_open_mib: int = 256
    ) -> None:
        self.path = path
        self._check_at_open_bytes = check_at_open_mib * 2**20
        # True when the file was opened without its page check (too large to check before
        # serving): the owner runs `verify` in the background.
        self.unverified = False
        self._identity = json.dumps(sorted(topics))
        self.cache_mib = cache_mib
        self._lock: IO[bytes] | None = None
        self._writer: sqlite3.Connection | None = None
        # Held by a write (which runs on a worker thread) and by closing: a gateway stopping in
        # the middle of a batch closes the file only once the batch is committed or rolled back.
        self._write_lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        # Why the store starts empty ("" when it resumed from its checkpoint).
        self.rebuild_reason = ""
        # Why a file was set aside at the last open or reset ("" when none was).
        self.set_aside = ""
        # Seconds the writes waited for SQLite's write lock (another process writing).
        self.lock_wait_s = 0.0
        # Whether the state topic is being appended (`append_requests`): no requests' index yet.
        self.appending = False

    # ---------------- opening ----------------

    def open(self) -> HistoryStore:
        """Takes the store's lock, checks the file, sets it aside when unusable, opens it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        self.set_aside = ""
        self.unverified = False
        problem = self._problem() if self.path.exists() else "no store on disk"
        if problem and self.path.exists():
            self._set_aside(problem)
        self._connect()
        if problem:
            self.rebuild_reason = problem
        elif not self.checkpoint():
            self.rebuild_reason = "the store holds no checkpoint yet"
        return self

    def attach(self) -> HistoryStore:
        """Opens a store another process of this gateway opened (and checked, and holds the lock
        of), to write beside it: a rebuild worker (gateway.adapters.rebuild). Unsynced, as the
        rebuild that started it."""
        self._connect()
        self._w.execute("PRAGMA synchronous=OFF")
        self._w.execute(f"PRAGMA wal_autocheckpoint={_REBUILD_CHECKPOINT_PAGES}")
        return self

    def reset(self, reason: str) -> None:
        """Sets the store aside and starts an empty one (e.g. its checkpoint is ahead of a topic)."""
        self._disconnect()
        self._set_aside(reason)
        self._connect()
        self.rebuild_reason = reason

    def bind_cluster(self, cluster_id: str) -> None:
        """The store belongs to one Kafka cluster: built from another one (a broker whose
        storage was reset keeps the topic names but not their records), it is set aside."""
        row = self._w.execute("SELECT value FROM meta WHERE key = 'cluster_id'").fetchone()
        if row is not None and row[0] != cluster_id:
            self.reset(f"built from another Kafka cluster ({row[0]}; this one is {cluster_id})")
        self._w.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('cluster_id', ?)", (cluster_id,))

    def close(self) -> None:
        self._disconnect()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _take_lock(self) -> None:
        lock = self.path.with_name(self.path.name + ".lock").open("wb")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise StoreLocked(
                f"the history store {self.path} is in use by another process; give every gateway "
                "process its own GATEWAY_STORE_PATH"
            ) from None
        self._lock = lock

    def _problem(self) -> str:
        """Why the file on disk cannot be resumed from ("" when it can). Small files get the page
        check here; a large one is left `unverified` for `verify`, which reads every page."""
        try:
            db = sqlite3.connect(self.path)
            try:
                meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            return f"not a usable SQLite database ({exc})"
        if meta.get("schema_version") != str(SCHEMA_VERSION):
            return f"schema version {meta.get('schema_version')!r}, this gateway writes {SCHEMA_VERSION}"
        if meta.get("topics") != self._identity:
            return "built from other topics (another topic prefix or catalogue)"
        if meta.get("rebuilding", _boot_id()) != _boot_id():
            return "its rebuild was cut short by the machine going down (writes not synced)"
        if self.path.stat().st_size > self._check_at_open_bytes:
            self.unverified = True
            return ""
        return self.verify()

    def verify(self) -> str:
        """SQLite's page check (`quick_check`) of the whole file on a connection of its own:
        "" when sound, else why not. Reads every page: seconds per GiB."""
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            try:
                check = db.execute("PRAGMA quick_check").fetchall()
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            return f"integrity check failed ({exc})"
        self.unverified = False
        return (
            "" if check == [("ok",)] else f"integrity check failed: {check[0][0] if check else 'no answer'}"
        )

    def condemn(self, reason: str) -> None:
        """Sets the open store aside for the next start to rebuild (it failed `verify`)."""
        self._set_aside(reason)

    def _set_aside(self, reason: str) -> None:
        """Renames the file (and its WAL) to <name>.set-aside, replacing an earlier one."""
        log.warning("history store %s set aside: %s; rebuilding from the topics", self.path, reason)
        self.set_aside = reason
        for suffix in ("", "-wal", "-shm"):
            source = self.path.with_name(self.path.name + suffix)
            target = self.path.with_name(self.path.name + ".set-aside" + suffix)
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
            with contextlib.suppress(FileNotFoundError):
                os.replace(source, target)

    def _connect(self) -> None:
        fresh = not self.path.exists()
        # Opened in a worker thread (the check may take a while), used on the event loop after:
        # one thread at a time, never two.
        writer = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        if fresh:
            writer.execute(f"PRAGMA page_size={_PAGE_SIZE}")  # before WAL mode: then it is fixed
        # Rebuild workers write beside the gateway (one transaction at a time): wait for a turn.
        writer.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        writer.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives a process crash; only a power loss may lose the last
        # ones, and the store is rebuilt from Kafka anyway.
        writer.execute("PRAGMA synchronous=NORMAL")
        writer.execute(f"PRAGMA cache_size=-{self.cache_mib * 1024}")
        writer.execute("PRAGMA journal_size_limit=67108864")
        if fresh or not writer.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
            writer.executescript(_SCHEMA)
            _create_indexes(writer, self.path)
            writer.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [("schema_version", str(SCHEMA_VERSION)), ("topics", self._identity)],
            )
        reader = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        reader.execute(f"PRAGMA cache_size=-{max(1, self.cache_mib // 4) * 1024}")
        reader.execute("PRAGMA query_only=1")
        self._writer, self._reader = writer, reader
        self.appending = not _has_index(writer, _REQUEST_INDEX[0])

    def _disconnect(self) -> None:
        with self._write_lock:
            for connection in (self._reader, self._writer):
                if connection is not None:
                    connection.close()
            self._reader = self._writer = None

    @property
    def _w(self) -> sqlite3.Connection:
        assert self._writer is not None, "the history store is not open"
        return self._writer

    @property
    def _r(self) -> sqlite3.Connection:
        assert self._reader is not None, "the history store is not open"
        return self._reader

    # ---------------- writing (the projector) ----------------

    @property
    def rebuilding(self) -> bool:
        """Whether a rebuild from the beginning is under way (begun here or by an earlier
        process that stopped before it ended)."""
        return self._w.execute("SELECT 1 FROM meta WHERE key = 'rebuilding'").fetchone() is not None

    def begin_rebuild(self) -> None:
        """Unsynced writes and a larger cache until `end_rebuild` (see the module doc)."""
        self._w.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('rebuilding', ?)", (_boot_id(),))
        self._w.execute("PRAGMA synchronous=OFF")
        self._w.execute(f"PRAGMA cache_size=-{self.cache_mib * _REBUILD_CACHE_FACTOR * 1024}")
        self._w.execute(f"PRAGMA wal_autocheckpoint={_REBUILD_CHECKPOINT_PAGES}")
        empty = all(
            self._w.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is None
            for table in ("requests", "events")
        )
        if empty:
            for name in (*_LISTING_INDEXES, _TRAIL_INDEX[0]):
                self._w.execute(f"DROP INDEX IF EXISTS {name}")

    def build_indexes(self) -> None:
        """The listing and subject indexes a rebuild dropped (see `begin_rebuild`), built from
        the rows (a second or so per million requests); nothing to do where they are there. A
        rebuild runs it before its first read of the requests (and `leave_bulk_mode` does,
        in case it did not)."""
        with self._write_lock:
            _create_indexes(self._w, self.path)

    def append_requests(self) -> bool:
        """A rebuild's workers are to read the state topic into this store: where it holds no
        request yet, its requests' index goes, and the workers append (`append_rows`) until
        `settle_requests`. Whether they append."""
        with self._write_lock:
            db = self._w
            if not self.appending and db.execute("SELECT 1 FROM requests LIMIT 1").fetchone() is None:
                db.execute(f"DROP INDEX IF EXISTS {_REQUEST_INDEX[0]}")
                self.appending = True
            return self.appending

    def append_rows(
        self,
        rows: Sequence[Sequence[Any]],
        deleted: Sequence[str],
        offsets: Mapping[Partition, int],
        marks: Mapping[Partition, str],
    ) -> None:
        """One transaction, as `commit`, of a batch of the state topic while appending: the
        requests its tombstones delete (each request's rows so far), then its rows (in the
        requests table's column order, at most one per request, later than its tombstone)."""
        with self._write_lock, self._batch() as db:
            if deleted:
                (upto,) = db.execute("SELECT coalesce(max(rowid), 0) FROM requests").fetchone()
                db.executemany(
                    "INSERT INTO appended_deletes (request_id, upto) VALUES (?, ?)",
                    [(request_id, upto) for request_id in deleted],
                )
            _insert(db, _INSERT_REQUEST, 11, rows)
            _write_offsets(db, offsets, marks)

    def settle_requests(self) -> None:
        """The end of appending: of each request's rows, the one the upserts would have left
        (none after its last tombstone), then the requests' index and their counts, in one
        transaction. Nothing to do when not appending."""
        with self._write_lock:
            if not self.appending:
                return
            db = self._w
            tombstones = [_DELETE_TOMBSTONED, "DELETE FROM appended_deletes"]
            if db.execute("SELECT 1 FROM appended_deletes LIMIT 1").fetchone() is None:
                tombstones = []
            recount = ["DELETE FROM request_counts", _RECOUNT]
            _build_unique(db, self.path, _REQUEST_INDEX, _DROP_SUPERSEDED, before=tombstones, after=recount)
            self.appending = False

    def build_trail_index(self) -> None:
        """The trail's index a rebuild dropped (see `_TRAIL_INDEX`), built from the rows once
        the event topic is read; events the topic holds twice (the same key of the same request)
        are first kept once, as their first arrival, as the index would have kept them. Nothing
        to do where it is there. `leave_bulk_mode` runs it."""
        with self._write_lock:
            _create_trail_index(self._w, self.path)

    def end_rebuild(self) -> None:
        """`leave_bulk_mode`, then `seal_rebuild`."""
        self.leave_bulk_mode()
        self.seal_rebuild()

    def leave_bulk_mode(self) -> None:
        """Synced writes and the usual cache from now on (quick: nothing is synced here). The
        store stays marked as rebuilding until `seal_rebuild`, which may run while it serves:
        the pages written unsynced reach the disk, and then the mark goes."""
        self.settle_requests()
        self.build_indexes()
        self.build_trail_index()
        with self._write_lock:
            db = self._w
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA cache_size=-{self.cache_mib * 1024}")
            db.execute(f"PRAGMA wal_autocheckpoint={_CHECKPOINT_PAGES}")

    def seal_rebuild(self) -> None:
        """Everything committed so far synced to disk, then the rebuilding mark removed. Seconds
        per GiB the rebuild wrote (the pages the OS still holds are written out): run on a thread
        while serving, it holds up no batch. A checkpoint on a connection of its own (synced:
        SQLite's default) syncs the log, copies what no reader still needs into the file and
        syncs the file; what stays in the log is synced there."""
        self.copy_log()
        # A checkpoint with nothing left to copy syncs nothing, and earlier ones ran unsynced.
        for suffix in ("", "-wal"):
            with contextlib.suppress(FileNotFoundError):
                descriptor = os.open(self.path.with_name(self.path.name + suffix), os.O_RDONLY)
                try:
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)
        with self._write_lock:
            if self._writer is not None:  # not closed meanwhile (else the next start seals it)
                self._writer.execute("DELETE FROM meta WHERE key = 'rebuilding'")

    def live_writes(self) -> None:
        """From now on the writer never copies the log into the file itself: small live batches
        are committed on the event loop, where such a checkpoint (up to a thousand 32 KiB pages
        copied, then synced) would hold up every call. `copy_log`, on another thread, does it."""
        with self._write_lock:
            self._w.execute("PRAGMA wal_autocheckpoint=0")

    def copy_log(self) -> None:
        """A passive checkpoint on a connection of its own: the log's pages that no reader still
        needs copied into the file, then synced. Never waits for the writer, nor it for this."""
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            db.close()

    def checkpoint(self) -> dict[Partition, int]:
        """The next offset to read per partition, as of the last committed batch."""
        rows = self._w.execute("SELECT topic, partition, next_offset FROM offsets").fetchall()
        return {(topic, partition): offset for topic, partition, offset in rows}

    def last_records(self) -> dict[Partition, tuple[int, str]]:
        """Per partition: (the offset of the last record read, its mark), where marked."""
        rows = self._w.execute(
            "SELECT topic, partition, next_offset, last_record FROM offsets WHERE last_record IS NOT NULL"
        )
        return {(topic, partition): (offset - 1, mark) for topic, partition, offset, mark in rows}

    def known(self, request_ids: Collection[str]) -> dict[str, Known]:
        """Version, counting key and listing place of the stored requests among `request_ids`."""
        rows = self._lookup(
            "request_id, version, opd_code, category, status, submitted_by, listing_time", request_ids
        )
        return {
            request_id: Known(version, (opd, category, status, client), placed)
            for request_id, version, opd, category, status, client, placed in rows
        }

    def newer_than_stored(self, carried: Sequence[tuple[str, int]]) -> set[tuple[str, int]]:
        """Of the (request id, version) pairs, those newer than the stored version of their
        request (or of a request not stored): what a catch-up compares.

        Compared in SQL, one statement per chunk: a rebuild asks this of every event (each
        carries its request), nearly all older than what the state topic gave, and fetching
        each stored version into Python cost more than the index probes themselves (rows made
        one by one, the interpreter lock let go and taken back per row)."""
        newer: set[tuple[str, int]] = set()
        for start in range(0, len(carried), _COMPARE_CHUNK):
            chunk = carried[start : start + _COMPARE_CHUNK]
            values = list(itertools.chain.from_iterable(chunk))
            newer.update(self._w.execute(_compare_statement(len(chunk)), values))
        return newer

    def _lookup(self, columns: str, request_ids: Collection[str]) -> Iterator[Any]:
        ids = list(request_ids)
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = ids[start : start + _LOOKUP_CHUNK]
            yield from self._w.execute(
                f"SELECT {columns} FROM requests WHERE request_id IN ({','.join('?' * len(chunk))})", chunk
            )

    def commit(
        self,
        requests: RequestBatch,
        known: Mapping[str, Known],
        events: Sequence[TrailRow],
        incidents: Sequence[Any],
        offsets: Mapping[Partition, int],
        *,
        bodies: Mapping[str, tuple[bytes, bytes | None, str | None]] | None = None,
        marks: Mapping[Partition, str] | None = None,
    ) -> None:
        """One transaction: the batch's rows and the offsets they were read up to.

        `known` is what `known()` answered for the batch's requests; `events` are
        (request_id, event key, stored event bytes) in arrival order; `bodies` the winners'
        `stored_parts` (body, contact, subject) when the caller already made them (else made
        here); `marks` the
        `mark_of` the last record read per partition (what `recreated` compares)."""
        with self._write_lock:
            self._commit(requests, known, events, incidents, offsets, bodies, marks or {})

    def commit_rows(
        self,
        requests: RequestBatch,
        offsets: Mapping[Partition, int],
        marks: Mapping[Partition, str] | None = None,
    ) -> None:
        """One transaction, as `commit`, of a batch a rebuild read off the state topic: its
        winners are `StateRow`s (the rows themselves, made from the records), each written
        whole (an upsert: while rebuilding, the listing indexes are not there to spare)."""
        upserts = [row for row in requests.winners.values() if row is not None]
        deletes = [(request_id,) for request_id, row in requests.winners.items() if row is None]
        with self._write_lock:
            self._write(upserts, (), deletes, (), (), requests.count_deltas, offsets, marks or {})

    def _commit(  # noqa: PLR0917
        self,
        requests: RequestBatch,
        known: Mapping[str, Known],
        events: Sequence[TrailRow],
        incidents: Sequence[Any],
        offsets: Mapping[Partition, int],
        bodies: Mapping[str, tuple[bytes, bytes | None, str | None]] | None,
        marks: Mapping[Partition, str],
    ) -> None:
        upserts: list[Sequence[Any]] = []
        updates: list[Sequence[Any]] = []
        deletes: list[Sequence[Any]] = []
        for request_id, request in requests.winners.items():
            if request is None:
                deletes.append((request_id,))
                continue
            body, contact, subject = bodies[request_id] if bodies is not None else stored_parts(request)
            before = known.get(request_id)
            if before is not None and before.placed_as(request):
                updates.append(
                    (
                        request.version,
                        int(request.status),
                        subject,
                        from_timestamp(request.updated_time),
                        body,
                        contact,
                        request_id,
                    )
                )
                continue
            upserts.append(
                (
                    request_id,
                    request.version,
                    request.opd_code,
                    request.category,
                    int(request.status),
                    request.submitted_by_client,
                    listing_time(request),
                    subject,
                    from_timestamp(request.updated_time),
                    body,
                    contact,
                )
            )
        self._write(upserts, updates, deletes, events, incidents, requests.count_deltas, offsets, marks)

    def _write(  # noqa: PLR0917
        self,
        upserts: Sequence[Sequence[Any]],
        updates: Sequence[Sequence[Any]],
        deletes: Sequence[Sequence[Any]],
        events: Sequence[TrailRow],
        incidents: Sequence[Any],
        count_deltas: Mapping[CountKey, int],
        offsets: Mapping[Partition, int],
        marks: Mapping[Partition, str],
    ) -> None:
        """The transaction of a batch: rows in the requests table's column order (`upserts`),
        `_UPDATE_REQUEST`'s parameters, ids to delete, trail rows, incidents, count moves and
        the offsets read up to."""
        with self._batch() as db:
            _insert(db, _INSERT_REQUEST, 11, upserts, _ON_CONFLICT_REQUEST)
            db.executemany(_UPDATE_REQUEST, updates)
            db.executemany("DELETE FROM requests WHERE request_id = ?", deletes)
            _insert(db, _INSERT_EVENT, 4, events)
            db.executemany(_UPSERT_INCIDENT, [_incident_row(i) for i in incidents])
            deltas = [(*key, n) for key, n in count_deltas.items() if n]
            if deltas:
                db.executemany(_ADD_COUNT, deltas)
                db.execute("DELETE FROM request_counts WHERE n = 0")
            _write_offsets(db, offsets, marks)

    @contextlib.contextmanager
    def _batch(self) -> Iterator[sqlite3.Connection]:
        """A batch's write transaction: committed whole or rolled back; the wait for SQLite's
        write lock (another process writing) counted in `lock_wait_s`."""
        db = self._w
        began = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        self.lock_wait_s += time.perf_counter() - began
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def drop_contact(self, request_id: str) -> bool:
        """Forgets a request's contact fields (erasure); True when there were any."""
        cursor = self._w.execute(
            "UPDATE requests SET contact = NULL WHERE request_id = ? AND contact IS NOT NULL", (request_id,)
        )
        return cursor.rowcount > 0

    # ---------------- reading (the API) ----------------

    def get_request(self, request_id: str) -> Any | None:
        row = self._r.execute(
            "SELECT body, contact FROM requests WHERE request_id = ?", (request_id,)
        ).fetchone()
        return None if row is None else _request(row[0], row[1])

    def has_request(self, request_id: str) -> bool:
        return (
            self._r.execute("SELECT 1 FROM requests WHERE request_id = ?", (request_id,)).fetchone()
            is not None
        )

    def list_requests(self, flt: RequestFilter, after: ListingKey | None, limit: int) -> list[Any]:
        """Up to `limit` matching requests in listing order, starting after the key `after`."""
        where, args = _request_where(flt)
        if after is not None:
            where.append("(listing_time, request_id) > (?, ?)")
            args.extend(after)
        sql = "SELECT body, contact FROM requests"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY listing_time, request_id LIMIT ?"
        return [_request(body, contact) for body, contact in self._r.execute(sql, [*args, limit])]

    def snapshot_requests(self, page: int = 500) -> Iterator[Any]:
        """Every request in listing order, as of the first item: one read transaction on a
        connection of its own, fetched a page at a time (memory stays at one page)."""
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            db.execute("PRAGMA query_only=1")
            db.execute("BEGIN")
            cursor = db.execute("SELECT body, contact FROM requests ORDER BY listing_time, request_id")
            while rows := cursor.fetchmany(page):
                for body, contact in rows:
                    yield _request(body, contact)
        finally:
            db.close()

    def of_subject(self, subject_id: str) -> list[Any]:
        rows = self._r.execute("SELECT body, contact FROM requests WHERE subject_id = ?", (subject_id,))
        return [_request(body, contact) for body, contact in rows]

    def contact_uses(self, subject_ids: Collection[str]) -> Iterator[Any]:
        """The requests carrying the contact of one of `subject_ids`, as (id, status, updated
        time, subject) only, in a request each: what the retention rule reads of the subjects
        that still have a data key. Found through the subject index, so a sweep reads the
        requests of the live contacts (the retention period's), not the whole history."""
        ids = list(subject_ids)
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = ids[start : start + _LOOKUP_CHUNK]
            rows = self._r.execute(
                "SELECT request_id, status, updated_time, subject_id FROM requests "
                f"WHERE subject_id IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            for request_id, status, updated, subject_id in rows:
                use = requests_pb2.ServiceRequest(request_id=request_id, status=status)
                use.updated_time.CopyFrom(to_timestamp(updated))
                use.encrypted_reporter.subject_id = subject_id
                yield use

    def open_requests(self, open_statuses: Collection[int]) -> Iterator[Any]:
        marks = ",".join("?" * len(open_statuses))
        rows = self._r.execute(
            f"SELECT body, contact FROM requests WHERE status IN ({marks})", list(open_statuses)
        )
        for body, contact in rows:
            yield _request(body, contact)

    def list_events(self, request_id: str, after: int, limit: int) -> list[StoredEvent]:
        """Up to `limit` events of a request's trail, oldest first, after position `after`."""
        contact_row = self._r.execute(
            "SELECT contact FROM requests WHERE request_id = ?", (request_id,)
        ).fetchone()
        contact = contact_row[0] if contact_row else None
        rows = self._r.execute(
            "SELECT position, body FROM events WHERE request_id = ? AND position > ?"
            " ORDER BY position LIMIT ?",
            (request_id, after, limit),
        )
        found = []
        for position, body in rows:
            try:
                event = requests_pb2.RequestEvent.FromString(body)
            except DecodeError as exc:
                # A rebuild stores events without decoding them whole (core.history.trail_row):
                # one that parsed that far but is not a RequestEvent is skipped here.
                log.warning("skipping an undecodable event of request %s in the store: %s", request_id, exc)
                continue
            if event.HasField("request"):
                with_contact(event.request, contact)
            found.append(StoredEvent(position, event))
        return found

    def incidents_to_keep(self, max_resolved: int) -> list[Any]:
        """The open incidents, then the `max_resolved` most recently resolved, oldest first."""
        open_rows = self._r.execute(f"SELECT body FROM incidents WHERE phase != {RESOLVED}").fetchall()
        resolved = self._r.execute(
            f"SELECT body FROM incidents WHERE phase = {RESOLVED} ORDER BY resolved_time DESC LIMIT ?",
            (max_resolved,),
        ).fetchall()
        rows = open_rows + resolved[::-1]
        return [camera_pb2.CameraIncident.FromString(body) for (body,) in rows]

    def counts(self) -> dict[CountKey, int]:
        rows = self._r.execute("SELECT opd_code, category, status, submitted_by, n FROM request_counts")
        return {(opd, category, status, client): n for opd, category, status, client, n in rows}

    def sizes(self) -> dict[str, int]:
        """Rows per table (for the view-size gauges); cheap only because counts are kept."""
        requests = sum(self.counts().values())
        events = self._r.execute("SELECT max(rowid) FROM events").fetchone()[0] or 0
        return {"requests": requests, "request_events": int(events)}


def mark_of(record: Any) -> str:
    """What tells a Kafka record from another at the same offset of a topic deleted and made
    again (offsets start at 0 again): its timestamp and a checksum of its key and value."""
    checksum = zlib.crc32(record.value or b"", zlib.crc32(record.key or b""))
    return f"{record.timestamp}:{checksum:08x}"


def _create_indexes(db: sqlite3.Connection, path: Path) -> None:
    """The listing indexes that are not there."""
    missing = [name for name in _LISTING_INDEXES if not _has_index(db, name)]
    if missing:
        _build(db, path, [f"CREATE INDEX {name} ON {_LISTING_INDEXES[name]}" for name in missing], missing)


def _create_trail_index(db: sqlite3.Connection, path: Path) -> None:
    """The trail's unique index, unless there. Where the rows hold an event twice (appended
    while the index was not there), its later copies go first."""
    if not _has_index(db, _TRAIL_INDEX[0]):
        _build_unique(db, path, _TRAIL_INDEX, _DROP_LATER_COPIES)


def _build_unique(
    db: sqlite3.Connection,
    path: Path,
    index: tuple[str, str],
    drop_copies: str,
    *,
    before: Sequence[str] = (),
    after: Sequence[str] = (),
) -> None:
    """A unique index (name, "table (columns)") over rows appended without it, in one
    transaction with the statements `before` and `after` it. Where the rows hold a key more than
    once (the build fails), `drop_copies` first keeps one row per key, and the build is run
    again: the usual case costs one sort."""
    name, columns = index
    create = f"CREATE UNIQUE INDEX {name} ON {columns}"
    try:
        _build(db, path, [*before, create, *after], [name])
    except sqlite3.IntegrityError:
        _build(db, path, [*before, drop_copies, create, *after], [name])


def _write_offsets(
    db: sqlite3.Connection, offsets: Mapping[Partition, int], marks: Mapping[Partition, str]
) -> None:
    db.executemany(
        "INSERT OR REPLACE INTO offsets (topic, partition, next_offset, last_record) VALUES (?, ?, ?, ?)",
        [(topic, p, offset, marks.get((topic, p))) for (topic, p), offset in offsets.items()],
    )


def _has_index(db: sqlite3.Connection, name: str) -> bool:
    found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,))
    return found.fetchone() is not None


def _build(db: sqlite3.Connection, path: Path, statements: list[str], names: list[str]) -> None:
    """Runs index builds in one transaction, with the sort's memory and files set up."""
    began, changes = time.perf_counter(), db.total_changes
    # SQLite sorts in memory up to the page cache's size, then in temporary files: the build
    # gets the live cache (the rebuild's is four times larger, and the memory limit holds the
    # rebuild workers too), and its files go beside the store (on the store's volume, not the
    # small /tmp of a pod), unless SQLITE_TMPDIR says where.
    os.environ.setdefault("SQLITE_TMPDIR", str(path.parent))
    (cache,) = db.execute("PRAGMA cache_size").fetchone()
    db.execute(f"PRAGMA cache_size=-{_INDEX_BUILD_CACHE_MIB * 1024}")
    # The sort on helper threads too: the trail's index is built when nothing else runs (the
    # 6,000,000 events of a million requests, offline: 21.2 s alone, 10.7 s with 2 threads,
    # for the same CPU).
    db.execute(f"PRAGMA threads={_INDEX_BUILD_THREADS}")
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in statements:
            db.execute(statement)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    finally:
        db.execute(f"PRAGMA cache_size={cache}")
        db.execute("PRAGMA threads=0")
    elapsed = time.perf_counter() - began
    log.log(
        logging.INFO if elapsed >= 0.5 else logging.DEBUG,
        "history store: built the indexes %s in %.1f s%s",
        ", ".join(names),
        elapsed,
        f" ({db.total_changes - changes} rows changed with them)" if db.total_changes > changes else "",
    )


def _insert(
    db: sqlite3.Connection, insert: str, width: int, rows: Sequence[Sequence[Any]], tail: str = ""
) -> None:
    """`insert VALUES (?, ...) tail` for every row, in order (as `executemany` of it would):
    `_ROWS_PER_INSERT` rows per statement, the rest one at a time. Rows inserted by one
    statement are inserted in their order, each after the one before (conflicts and rowids as
    one statement per row)."""
    whole = len(rows) - len(rows) % _ROWS_PER_INSERT
    if whole:
        step = width * _ROWS_PER_INSERT
        values = list(itertools.chain.from_iterable(rows[:whole] if whole < len(rows) else rows))
        db.executemany(
            _statement(insert, width, _ROWS_PER_INSERT, tail),
            [values[start : start + step] for start in range(0, len(values), step)],
        )
    if whole < len(rows):
        db.executemany(_statement(insert, width, 1, tail), rows[whole:])


@functools.cache
def _compare_statement(pairs: int) -> str:
    """`newer_than_stored`'s query of so many pairs: the requests' unique index probed per pair."""
    values = ", ".join(["(?, ?)"] * pairs)
    return (
        f"WITH carried (request_id, version) AS (VALUES {values}) "
        "SELECT carried.request_id, carried.version FROM carried "
        "LEFT JOIN requests ON requests.request_id = carried.request_id "
        "WHERE requests.version IS NULL OR carried.version > requests.version"
    )


@functools.cache
def _statement(insert: str, width: int, rows: int, tail: str) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return f"{insert} VALUES {', '.join([row] * rows)}{tail}"


def _boot_id() -> str:
    """This boot of the machine (changes when it restarts); "" where the kernel tells none."""
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return ""


def _request(body: bytes, contact: bytes | None) -> Any:
    return with_contact(requests_pb2.ServiceRequest.FromString(body), contact)


def _incident_row(incident: Any) -> tuple[str, int, float, bytes]:
    return (
        incident.incident_id,
        int(incident.phase),
        from_timestamp(incident.resolved_time),
        incident.SerializeToString(),
    )


def _request_where(flt: RequestFilter) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    for column, value in (("opd_code", flt.opd_code), ("category", flt.category), ("status", flt.status)):
        if value:
            where.append(f"{column} = ?")
            args.append(value)
    if flt.visible_to is not None:
        opd_code, client_id = flt.visible_to
        where.append("(opd_code = ? OR submitted_by = ?)" if opd_code else "submitted_by = ?")
        args.extend([opd_code, client_id] if opd_code else [client_id])
    return where, args
