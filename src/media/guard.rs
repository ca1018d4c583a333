//! Containing str0m: a panic inside an `Rtc` becomes an error for its one stream, which is then
//! dropped, instead of taking down the engine.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::Sfu;
use super::deferred::Deferred;
use super::ids::PeerId;
use super::types::{GoneReason, MediaError};

/// Runs `f`, turning a panic inside str0m into an error.
pub(super) fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, MediaError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| MediaError::EnginePanic)
}

impl Sfu {
    /// Turns the result of a guarded str0m call into ours: str0m's own error becomes `reject`
    /// of its text, and a panic inside str0m schedules the stream's removal (its state can no
    /// longer be trusted).
    pub(super) fn settle<T, E: fmt::Display>(
        &mut self,
        id: PeerId,
        handled: Result<Result<T, E>, MediaError>,
        reject: fn(String) -> MediaError,
    ) -> Result<T, MediaError> {
        match handled {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(reject(e.to_string())),
            Err(e) => {
                self.deferred
                    .push_back(Deferred::Remove(id, GoneReason::EngineError));
                Err(e)
            }
        }
    }
}
