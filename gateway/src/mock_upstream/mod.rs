// NOTE TO WHOEVER IMPLEMENTS THIS MODULE IN THE CURRENT CHANGE: first read /tmp/helper-common.md
// (conventions, required tests, and the private-copy workflow: work in /tmp/work-NAME, copy only
// your own files back, never commit). The lead removes this note.
//! Placeholder, being replaced by the standalone mock upstream server in this change.
