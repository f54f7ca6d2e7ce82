//! The pure core: file IDs, batches, request validation, the outcome and its invariant.
//! Nothing here knows about Lambda, HTTP clients or AWS.

pub mod address;
pub mod batch;
pub mod fit;
pub mod ids;
pub mod link;
pub mod outcome;
pub mod request;
