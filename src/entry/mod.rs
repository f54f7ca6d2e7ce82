//! The edges where events come in.

pub mod http;
pub mod lambda;
