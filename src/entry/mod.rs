//! The edges where events come in.

pub mod http;
pub mod job_routes;
pub mod lambda;
