//! The edges where events come in.

pub mod console_routes;
pub mod http;
pub mod job_routes;
pub mod lambda;
