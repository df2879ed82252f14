"""Personal data: keyring, subject ids, AES-256-GCM envelopes, the key store, retention, audit,
dead letters. Plain unit tests (the Kafka side is tested end to end with the gateway)."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest

from smartcity.codec import to_timestamp
from smartcity.dlq import SourceRecord, dead_letter_for
from smartcity.personal_data import audit, envelope
from smartcity.personal_data.config import PersonalDataSettings
from smartcity.personal_data.dead_letters import clear_reporters, dead_letter_payload
from smartcity.personal_data.keyring import Keyring, KeyringError, load_keyring, new_kek_text
from smartcity.personal_data.keystore import DataKeyStore, kek_check_subject, record_key
from smartcity.personal_data.local import InMemoryKeys, add_kek, write_local_secrets
from smartcity.personal_data.retention import ContactUse, expired_subjects
from smartcity.personal_data.subjects import SubjectHasher, contact_identity, normalise_phone
from smartcity.personal_data.sweeper import RetentionSweeper
from smartcity.personal_data.vault import ContactVault, requests_of_subject
from smartcity.settings import SettingsError
from smartcity.v1 import requests_pb2 as pb
from smartcity.v1 import wifi_pb2

SITI = pb.Reporter(name="Siti Rahayu", phone="+62 812-3456-7890", email="Siti@Example.ID")
SALT = b"a-salt-of-enough-length"


def keyring(*ids: str, active: str = "") -> Keyring:
    keys = {i: base64.b64decode(new_kek_text()) for i in ids}
    return Keyring(keys=keys, active_id=active or ids[-1])


# ---------------- keyring ----------------

def test_a_keyring_directory_holds_one_kek_per_key_file(tmp_path: Path) -> None:
    add_kek(tmp_path, "kek-a")
    (tmp_path / "kek-b.key").write_text("ab" * 32 + "\n")  # hex works too
    (tmp_path / "subject-salt").write_text("not a key")  # another key of the same Secret
    (tmp_path / "..data").mkdir()  # what a Kubernetes Secret mount also holds
    ring = load_keyring(tmp_path, "kek-b", variable="V", active_variable="A")
    assert ring.ids() == ["kek-a", "kek-b"] and ring.active == bytes.fromhex("ab" * 32)
    assert "ab" * 4 not in repr(ring) and ring.active.hex() not in repr(ring)


def test_a_keyring_file_maps_ids_to_keys(tmp_path: Path) -> None:
    path = tmp_path / "keyring.yaml"
    path.write_text(f"old: {new_kek_text()}\nnew: {new_kek_text()}\n")
    assert load_keyring(path, "new", variable="V", active_variable="A").active_id == "new"


@pytest.mark.parametrize(("content", "active", "message"), [
    (None, "", "no such file or directory"),
    ("", "", "holds no KEK"),
    ("short", "", "not base64 or hex"),
    (base64.b64encode(b"x" * 16).decode(), "", "16 bytes, a KEK must be 32"),
    ("ok", "other", "A='other' is not in the keyring"),
    ("two", "", "A is not set and V holds 2 KEKs"),
])
def test_a_bad_keyring_is_a_clear_error(tmp_path: Path, content: str | None, active: str,
                                        message: str) -> None:
    folder = tmp_path / "ring"
    if content is not None:
        folder.mkdir()
        if content in {"ok", "two"}:
            add_kek(folder, "k1")
            if content == "two":
                add_kek(folder, "k2")
        elif content:
            (folder / "k1.key").write_text(content)
    with pytest.raises(KeyringError, match=message):
        load_keyring(folder, active, variable="V", active_variable="A")


def test_settings_need_the_secrets_and_name_the_variable(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERSONAL_DATA_KEYRING", raising=False)
    with pytest.raises(KeyringError, match="PERSONAL_DATA_KEYRING is not set"):
        PersonalDataSettings.from_env()
    for name, value in write_local_secrets(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PERSONAL_DATA_RETENTION_DAYS", "0.5")
    settings = PersonalDataSettings.from_env()
    assert settings.retention_s == 43200 and settings.keyring().active_id == "local-1"
    assert settings.hasher().subject_id(SITI)
    monkeypatch.setenv("PERSONAL_DATA_SWEEP_INTERVAL_S", "0")
    with pytest.raises(SettingsError, match="PERSONAL_DATA_SWEEP_INTERVAL_S must be > 0"):
        PersonalDataSettings.from_env()
    monkeypatch.setenv("PERSONAL_DATA_SWEEP_INTERVAL_S", "10")
    (tmp_path / "subject-salt").write_text("short")
    with pytest.raises(SettingsError, match=r"PERSONAL_DATA_SUBJECT_SALT_FILE=.*at least 16"):
        PersonalDataSettings.from_env().hasher()


# ---------------- subjects ----------------

def test_spellings_of_one_contact_are_one_subject() -> None:
    hasher = SubjectHasher(SALT)
    same = [pb.Reporter(phone="0812 3456 7890"), pb.Reporter(name="S.", phone="+62-812-3456-7890"), SITI]
    assert len({hasher.subject_id(r) for r in same}) == 1
    assert normalise_phone("(0812) 1111") == "628121111"
    assert contact_identity(pb.Reporter(email=" Siti@Example.ID ")) == "email:siti@example.id"
    assert contact_identity(pb.Reporter(name="  SITI   rahayu ")) == "name:siti rahayu"
    assert hasher.subject_id(pb.Reporter()) is None
    assert hasher.subject_id(pb.Reporter(phone="0812 0000")) != hasher.subject_id(SITI)


def test_subject_ids_depend_on_the_salt_and_hide_the_contact() -> None:
    one, two = SubjectHasher(SALT).subject_id(SITI), SubjectHasher(SALT + b"!").subject_id(SITI)
    assert one != two and one is not None and "6281234567890" not in one
    assert "salt" not in repr(SubjectHasher(SALT)).replace("<salt withheld>", "")
    with pytest.raises(SettingsError):
        SubjectHasher(b"short")


# ---------------- envelopes ----------------

def test_a_contact_opens_only_with_its_key_for_its_request() -> None:
    key = envelope.new_data_key()
    sealed = envelope.seal_contact(SITI, "subj-1", "dk-1", key, "req-1")
    raw = sealed.SerializeToString()
    assert b"Siti" not in raw and b"812" not in raw and b"Example" not in raw
    assert envelope.open_contact(sealed, key, "req-1") == SITI
    with pytest.raises(envelope.ContactUnreadable):
        envelope.open_contact(sealed, key, "req-2")  # moved to another request
    with pytest.raises(envelope.ContactUnreadable):
        envelope.open_contact(sealed, envelope.new_data_key(), "req-1")
    tampered = pb.EncryptedContact()
    tampered.CopyFrom(sealed)
    tampered.ciphertext = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    with pytest.raises(envelope.ContactUnreadable):
        envelope.open_contact(tampered, key, "req-1")
    assert envelope.seal_contact(SITI, "subj-1", "dk-1", key, "req-1").nonce != sealed.nonce


def test_data_keys_unwrap_with_their_kek_only() -> None:
    ring = keyring("k1")
    key = envelope.new_data_key()
    record = envelope.wrap_data_key(ring, "subj-1", "dk-1", key, now=1.0)
    assert record.kek_id == "k1" and key not in record.SerializeToString()
    assert envelope.unwrap_data_key(ring, record) == key
    impostor = keyring("k1")  # same id, another key
    with pytest.raises(envelope.WrongKekError, match="different key under that id"):
        envelope.unwrap_data_key(impostor, record)
    with pytest.raises(KeyringError, match="'k1' is not in the keyring"):
        envelope.unwrap_data_key(keyring("k2"), record)
    moved = pb.DataKeyRecord()
    moved.CopyFrom(record)
    moved.subject_id = "subj-2"
    with pytest.raises(envelope.WrongKekError):
        envelope.unwrap_data_key(ring, moved)


# ---------------- the key store ----------------

def put(store: DataKeyStore, record: Any) -> None:
    store.apply(record_key(record.subject_id, record.data_key_id), record)


def store_with_key(ring: Keyring, subject: str = "subj-1") -> DataKeyStore:
    store = DataKeyStore(ring)
    put(store, store.new_key(subject))
    return store


def test_erasing_a_subject_makes_every_contact_unreadable_for_good() -> None:
    ring = keyring("k1")
    store = store_with_key(ring)
    first = store.seal(SITI, "subj-1", "req-1")
    second = store.seal(SITI, "subj-1", "req-2")
    assert store.open(first, "req-1") == SITI and store.open(second, "req-2") == SITI
    record = store.record("subj-1")
    assert record is not None
    store.apply(record_key("subj-1", record.data_key_id), None)  # the tombstone
    assert store.open(first, "req-1") is None and not store.readable(second)
    # A new contact of the same subject gets a new key, with a new id: the old contacts stay
    # unreadable (they name the destroyed key).
    put(store, store.new_key("subj-1"))
    assert store.open(first, "req-1") is None
    assert record.data_key_id != store.record("subj-1").data_key_id  # type: ignore[union-attr]
    with pytest.raises(KeyError):
        DataKeyStore(ring).seal(SITI, "subj-9", "req-9")


def test_two_keys_of_one_subject_both_open_and_both_die_with_an_erasure() -> None:
    # Two gateway replicas gave a new subject a key at the same moment: both stay valid.
    ring = keyring("k1")
    store = DataKeyStore(ring)
    first, second = store.new_key("subj-1", now=2.0), store.new_key("subj-1", now=1.0)
    put(store, first)
    sealed_first = store.seal(SITI, "subj-1", "req-1")
    put(store, second)
    sealed_second = store.seal(SITI, "subj-1", "req-2")
    assert sealed_second.data_key_id == second.data_key_id  # the oldest wins, on every replica
    assert store.open(sealed_first, "req-1") == SITI and store.open(sealed_second, "req-2") == SITI
    assert len(store.keys_of("subj-1")) == 2 and store.created_at("subj-1") == 2.0
    for key in store.keys_of("subj-1"):
        store.apply(key, None)
    assert "subj-1" not in store and store.open(sealed_first, "req-1") is None
    assert store.open(sealed_second, "req-2") is None and store.keys_of("subj-1") == []


def test_data_written_under_an_old_kek_reads_after_a_new_one_is_active() -> None:
    old_ring = keyring("k1")
    old = store_with_key(old_ring)
    sealed = old.seal(SITI, "subj-1", "req-1")
    record = old.record("subj-1")
    rotated = Keyring(keys={**old_ring.keys, "k2": base64.b64decode(new_kek_text())}, active_id="k2")
    fresh = DataKeyStore(rotated)  # a restarted gateway with the new keyring
    put(fresh, record)
    fresh.verify()
    assert fresh.open(sealed, "req-1") == SITI
    assert fresh.new_key("subj-2").kek_id == "k2"
    # Rewrapping moves the old data key under the new KEK; then the old KEK can go.
    assert [r.subject_id for _, r in fresh.under_old_keks()] == ["subj-1"]
    put(fresh, fresh.rewrapped(record))
    retired = DataKeyStore(Keyring(keys={"k2": rotated.keys["k2"]}, active_id="k2"))
    put(retired, fresh.record("subj-1"))
    retired.apply(kek_check_subject("k1"), envelope.wrap_data_key(old_ring, kek_check_subject("k1"),
                                                                  "dk-c", envelope.new_data_key()))
    retired.verify()  # a kek-check of a retired KEK is fine
    assert retired.open(sealed, "req-1") == SITI and not retired.under_old_keks()


def test_a_wrong_or_missing_kek_fails_verification_clearly() -> None:
    ring = keyring("k1")
    store = store_with_key(ring)
    store.apply(kek_check_subject("k1"), store.kek_check_to_publish())
    assert store.kek_check_to_publish() is None and store.kek_check_record() is not None
    record, check = store.record("subj-1"), store.kek_check_record()
    wrong = DataKeyStore(keyring("k1"))
    put(wrong, record)
    wrong.apply(kek_check_subject("k1"), check)
    with pytest.raises(KeyringError, match="'k1' in the keyring is not the key"):
        wrong.verify()
    missing = DataKeyStore(keyring("k2"))
    put(missing, record)
    with pytest.raises(KeyringError, match="KEK 'k1' is missing from the keyring, and 1 data key"):
        missing.verify()
    empty_topic = DataKeyStore(keyring("k1"))
    empty_topic.verify()
    assert empty_topic.kek_check_to_publish() is not None


# ---------------- retention ----------------

DAY = 86400.0


def use(subject: str, request: str, status: int, at: float) -> ContactUse:
    return ContactUse(subject, request, status, at)


def test_retention_destroys_keys_only_when_every_request_is_long_finished() -> None:
    now = 100 * DAY
    uses = [
        use("s-closed", "r1", pb.REQUEST_STATUS_CLOSED, now - 31 * DAY),
        use("s-closed", "r2", pb.REQUEST_STATUS_REJECTED, now - 40 * DAY),
        use("s-recent", "r3", pb.REQUEST_STATUS_RESOLVED, now - 29 * DAY),
        use("s-open", "r4", pb.REQUEST_STATUS_CLOSED, now - 90 * DAY),
        use("s-open", "r5", pb.REQUEST_STATUS_IN_PROGRESS, now - 90 * DAY),
    ]
    keys = {"s-closed": 0.0, "s-recent": 0.0, "s-open": 0.0,
            "s-orphan-old": now - 700, "s-orphan-new": now - 5}
    expired = expired_subjects(uses, keys, now, retention_s=30 * DAY, orphan_grace_s=600)
    assert [(e.subject_id, e.request_ids) for e in expired] == [("s-closed", ("r1", "r2")),
                                                                ("s-orphan-old", ())]
    assert expired_subjects(uses, {}, now, 30 * DAY, 600) == []  # already destroyed: nothing to do


# ---------------- audit ----------------

def test_audit_events_name_who_and_which_request_never_the_data() -> None:
    read = audit.contact_read("dpmptsp-app", "DPMPTSP", "req-1", "GetRequest", now=5.0)
    assert (read.action, read.client_id, read.request_id, read.time.seconds) == (
        pb.AUDIT_ACTION_CONTACT_READ, "dpmptsp-app", "req-1", 5)
    erased = audit.contact_destroyed(pb.AUDIT_ACTION_CONTACT_ERASED, client_id="dpo", opd_code="",
                                     request_ids=["req-1", "req-2"], reason="letter 12/2026")
    assert [e.request_id for e in erased] == ["req-1", "req-2"]
    assert all(list(e.request_ids) == ["req-1", "req-2"] for e in erased)
    orphan = audit.contact_destroyed(pb.AUDIT_ACTION_CONTACT_DISCARDED, client_id="gateway", opd_code="",
                                     request_ids=[], reason="submit rejected")
    assert len(orphan) == 1 and orphan[0].request_id == ""
    fields = {f.name for f in pb.AuditEvent.DESCRIPTOR.fields}
    assert not fields & {"reporter", "subject_id", "name", "phone", "email", "encrypted_reporter"}


# ---------------- dead letters ----------------

def plaintext_submit() -> pb.RequestCommand:
    command = pb.RequestCommand(command_id="c1", request_id="req-1")
    command.submit.category = "roads"
    command.submit.reporter.CopyFrom(SITI)
    command.submit.encrypted_reporter.CopyFrom(
        envelope.seal_contact(SITI, "subj-1", "dk-1", envelope.new_data_key(), "req-1"))
    return command


def test_a_dead_letter_of_a_requests_topic_keeps_no_plaintext_contact() -> None:
    record = SourceRecord("p.requests.commands.v1", 0, 7, b"req-1", plaintext_submit().SerializeToString())
    letter = dead_letter_for(record, "invalid", "citizen-requests")
    assert letter.value is not None and b"Siti" not in letter.value and b"812" not in letter.value
    assert dict(letter.headers)["dlq.payload"] == b"redacted"
    kept = pb.RequestCommand.FromString(letter.value)
    assert kept.submit.category == "roads" and kept.submit.HasField("encrypted_reporter")
    assert not kept.submit.HasField("reporter")
    garbage = SourceRecord("p.requests.commands.v1", 0, 8, b"k", b"\xff\xffSiti +62 812")
    withheld = dead_letter_for(garbage, "not a RequestCommand", "citizen-requests")
    assert withheld.value is None and dict(withheld.headers)["dlq.payload"] == b"withheld"
    assert dict(withheld.headers)["dlq.source.offset"] == b"8"


def test_a_dead_letter_of_wifi_sessions_never_holds_a_raw_mac() -> None:
    raw = b"\n\x04ap-1\x12\x11aa:bb:cc:dd:ee:ff\xff"  # does not parse: withheld
    letter = dead_letter_for(SourceRecord("x.wifi.client-sessions.v1", 1, 2, b"ap-1", raw), "bad", "wifi")
    assert letter.value is None and dict(letter.headers)["dlq.payload"] == b"withheld"
    telemetry = dead_letter_for(SourceRecord("x.wifi.ap-telemetry.v1", 1, 2, b"ap-1", raw), "bad", "wifi")
    assert telemetry.value == raw and "dlq.payload" not in dict(telemetry.headers)
    hashed = "ab" * 32
    for mac in ("AA:BB:CC:DD:EE:FF", "aa-bb-cc-dd-ee-ff", "aabb.ccdd.eeff", "AABBCCDDEEFF"):
        session = wifi_pb2.ClientSession(ap_id="ap-1", session_id=f"s {mac}", client_hash=mac)
        kept = dead_letter_payload("p.wifi.client-sessions.v1", session.SerializeToString())
        assert kept.treatment == "redacted" and kept.value is not None and mac.encode() not in kept.value
        parsed = wifi_pb2.ClientSession.FromString(kept.value)
        assert (parsed.ap_id, parsed.session_id, parsed.client_hash) == ("ap-1", "<redacted>", "<redacted>")
    fine = wifi_pb2.ClientSession(ap_id="ap-1", session_id="s-1", client_hash=hashed)
    payload = dead_letter_payload("wifi.client-sessions.v1", fine.SerializeToString())
    assert wifi_pb2.ClientSession.FromString(payload.value or b"") == fine  # a real hash is no MAC


def test_a_session_dead_lettered_out_of_a_batch_is_judged_as_a_session() -> None:
    hashed = "cd" * 32
    fine = wifi_pb2.ClientSession(ap_id="ap-1", session_id="s-1", client_hash=hashed)
    leaky = wifi_pb2.ClientSession(ap_id="ap-2", session_id="s-2", client_hash="aa:bb:cc:dd:ee:ff")
    topic = "p.wifi.client-session-batches.v1"
    for session, expected_hash in ((fine, hashed), (leaky, "<redacted>")):
        record = SourceRecord(topic, 0, 7, b"site-1", session.SerializeToString(),
                              value_type="smartcity.v1.ClientSession")
        letter = dead_letter_for(record, "bad reading", "wifi")
        assert dict(letter.headers)["dlq.payload"] == b"redacted"
        assert wifi_pb2.ClientSession.FromString(letter.value or b"").client_hash == expected_hash
    batch = wifi_pb2.ClientSessionBatch(site_id="site-1", sessions=[leaky]).SerializeToString()
    whole = dead_letter_for(SourceRecord(topic, 0, 8, b"site-1", batch), "bad batch", "wifi")
    assert whole.value is not None and b"aa:bb:cc:dd:ee:ff" not in whole.value
    broken = dead_letter_for(SourceRecord(topic, 0, 9, b"site-1", batch[:-3] + b"\xff"), "x", "wifi")
    assert broken.value is None and dict(broken.headers)["dlq.payload"] == b"withheld"


def test_clear_reporters_reaches_nested_requests() -> None:
    event = pb.RequestEvent(event_id="e1")
    event.request.reporter.CopyFrom(SITI)
    event.request.requested_time.CopyFrom(to_timestamp(1.0))
    clear_reporters(event)
    assert not event.request.HasField("reporter") and event.request.requested_time.seconds == 1
    payload = dead_letter_payload("requests.state.v1", event.request.SerializeToString())
    assert payload.treatment == "redacted"


# ---------------- the vault (the gateway's use of all of it) ----------------

def request_with(sealed: pb.EncryptedContact | None, request_id: str,
                 status: pb.RequestStatus = pb.REQUEST_STATUS_SUBMITTED,
                 updated: float = 0.0) -> pb.ServiceRequest:
    request = pb.ServiceRequest(request_id=request_id, category="roads", status=status)
    request.updated_time.CopyFrom(to_timestamp(updated))
    if sealed is not None:
        request.encrypted_reporter.CopyFrom(sealed)
    return request


async def test_the_vault_shows_the_contact_to_the_routed_opd_only_until_erased() -> None:
    vault = ContactVault(InMemoryKeys(keyring("k1")), SubjectHasher(SALT))
    made = await vault.seal(SITI, "req-1")
    reused = await vault.seal(pb.Reporter(phone="0812 3456 7890"), "req-2")
    assert made is not None and reused is not None and made.new_key and not reused.new_key
    sealed, again = made.contact, reused.contact
    assert sealed.subject_id == again.subject_id
    assert await vault.seal(pb.Reporter(), "req-3") is None
    first, second = request_with(sealed, "req-1"), request_with(again, "req-2")
    opd = vault.for_caller(first, sees_contact=True)
    assert opd.revealed and opd.request.reporter == SITI
    assert opd.request.contact_data == pb.CONTACT_DATA_STATE_AVAILABLE
    assert not opd.request.HasField("encrypted_reporter") and first.HasField("encrypted_reporter")
    other = vault.for_caller(first, sees_contact=False)
    assert not other.revealed and not other.request.HasField("reporter")
    assert other.request.contact_data == pb.CONTACT_DATA_STATE_AVAILABLE
    moved = request_with(sealed, "req-2")  # another request's envelope: opens nowhere
    assert vault.for_caller(moved, sees_contact=True).request.contact_data == pb.CONTACT_DATA_STATE_ERASED
    nothing = vault.for_caller(request_with(None, "req-4"), sees_contact=True)
    assert nothing.request.contact_data == pb.CONTACT_DATA_STATE_NONE
    everyone = [first, second, request_with(None, "req-4")]
    assert requests_of_subject(everyone, sealed.subject_id) == ["req-1", "req-2"]
    assert await vault.erase(sealed.subject_id) is True and await vault.erase(sealed.subject_id) is False
    for request in (first, second):
        after = vault.for_caller(request, sees_contact=True)
        assert not after.revealed and not after.request.HasField("reporter")
        assert after.request.contact_data == pb.CONTACT_DATA_STATE_ERASED
        assert after.request.category == "roads"  # the request itself stays


async def test_the_vault_expires_long_finished_contacts() -> None:
    keys = InMemoryKeys(keyring("k1"))
    vault = ContactVault(keys, SubjectHasher(SALT))
    done = await vault.seal(SITI, "req-1")
    live = await vault.seal(pb.Reporter(email="budi@example.id"), "req-2")
    assert done is not None and live is not None
    requests = [request_with(done.contact, "req-1", pb.REQUEST_STATUS_CLOSED, updated=10.0),
                request_with(live.contact, "req-2", pb.REQUEST_STATUS_IN_PROGRESS, updated=10.0)]
    expired = vault.expired(requests, now=10.0 + 31 * DAY, retention_s=30 * DAY, orphan_grace_s=1e12)
    assert [(e.subject_id, e.request_ids) for e in expired] == [(done.contact.subject_id, ("req-1",))]


async def test_a_rejected_submit_keeps_no_contact_data_unless_its_key_is_in_use() -> None:
    keys = InMemoryKeys(keyring("k1"))
    vault = ContactVault(keys, SubjectHasher(SALT))
    rejected = await vault.seal(SITI, "req-1")
    assert rejected is not None and await vault.discard(rejected, requests=[]) is True
    assert not vault.store.readable(rejected.contact)
    first = await vault.seal(SITI, "req-2")
    assert first is not None and first.new_key  # a new key after the discard
    in_use = [request_with(first.contact, "req-2")]
    assert await vault.discard(first, in_use) is False and vault.store.readable(first.contact)
    reused = await vault.seal(SITI, "req-3")
    assert reused is not None and await vault.discard(reused, []) is False  # not its key to destroy
    assert vault.store.readable(first.contact)


async def test_the_sweep_erases_what_expired_and_audits_it() -> None:
    keys = InMemoryKeys(keyring("k1"))
    vault = ContactVault(keys, SubjectHasher(SALT))
    done = await vault.seal(SITI, "req-1")
    orphan = await vault.seal(pb.Reporter(email="budi@example.id"), "req-9")  # its submit never landed
    assert done is not None and orphan is not None
    start = time.time()  # the keys were made now
    views = [request_with(done.contact, "req-1", pb.REQUEST_STATUS_CLOSED, updated=start)]
    trail: list[Any] = []

    async def record(events: Any) -> None:
        trail.extend(events)

    settings = PersonalDataSettings(Path("k"), "", Path("s"), retention_days=1, orphan_grace_s=60)
    clock = [start + 30]
    sweeper = RetentionSweeper(vault, record, lambda: views, settings, actor="gateway",
                               clock=lambda: clock[0])
    assert await sweeper.sweep() == [] and not trail
    clock[0] = start + DAY + 1
    expired = await sweeper.sweep()
    destroyed = sorted(e.subject_id for e in expired)
    assert destroyed == sorted([done.contact.subject_id, orphan.contact.subject_id])
    assert not vault.store.readable(done.contact) and not vault.store.readable(orphan.contact)
    assert sorted((e.action, e.request_id) for e in trail) == [
        (pb.AUDIT_ACTION_CONTACT_EXPIRED, "req-1"), (pb.AUDIT_ACTION_CONTACT_DISCARDED, "")]
    assert all(e.client_id == "gateway" and e.method == "retention" for e in trail)
    assert await sweeper.sweep() == []  # nothing left
