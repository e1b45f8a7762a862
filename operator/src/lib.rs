//! Tollgate's operator. So far: building the gateway's ConfigMap and Secret from compiled
//! objects ([`render`]), shared by the offline `render` command and (next) the controllers.

pub mod render;

/// An in-memory Kubernetes API (list, watch, apply, status) for controller tests.
#[cfg(test)]
pub mod testing;
