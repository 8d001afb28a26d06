//! The hodor conformance suite (work in progress: the cases land with their own change).

#![deny(missing_docs)]
