//! The gateway's configuration at run time: immutable snapshots built off the hot path,
//! swapped atomically, watched for changes.

pub mod snapshot;
pub mod source;
pub mod state;
pub mod watch;

pub use snapshot::Snapshot;
pub use source::ConfigSource;
pub use state::ConfigState;
