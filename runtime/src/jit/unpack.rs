//! Opcode semantics for the unpack family, written from `Python/ceval.c` (3.11) against the public C
//! API, with the helper conventions of `super::ops` (uniform signature, tagged error return,
//! stack left as ceval's error path leaves it).
