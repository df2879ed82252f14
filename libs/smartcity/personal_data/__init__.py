"""Citizens' personal data (UU PDP 27/2022): crypto-shredding of reporters' contact details.

    keyring.py      the key-encryption keys (KEKs) from a mounted secret, the active KEK's id
    subjects.py     who a contact belongs to: a keyed hash of the normalised phone / e-mail / name
    envelope.py     AES-256-GCM: data keys wrapped by a KEK, contact details sealed by a data key
    keystore.py     the data keys the gateway knows, by subject; creating and destroying them
    keytopic.py     the key store on Kafka (requests.data-keys.v1, compacted), read at start
    retention.py    which subjects' data keys the retention rule destroys
    audit.py        accountability events for requests.audit.v1 (who read or erased, never what)
    dead_letters.py what a dead letter of a topic holding personal data may keep
    config.py       the operator's secrets and the retention settings from the environment

Plaintext contact details exist only in the memory of the gateway answering the routed OPD;
every topic, table, view and log holds an EncryptedContact. Destroying a subject's data key
(a tombstone on its compacted topic) makes every copy of its contact data unreadable at once.
docs/personal-data.md tells the whole story.
"""
