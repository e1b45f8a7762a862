//! The gateway's configuration at run time: where it comes from, the snapshot being served
//! (swapped atomically), and watching for changes.

pub mod source;
pub mod state;
pub mod watch;

pub use source::ConfigSource;
pub use state::ConfigState;
