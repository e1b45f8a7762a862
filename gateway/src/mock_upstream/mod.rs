//! Placeholder, being replaced by the standalone mock upstream server in this change.
