//! Sluice on Kubernetes. Today: the objects of each tenant's build namespace, which the
//! tenant provisioner applies and `sluice kube manifests --org SLUG` prints for review.
#![forbid(unsafe_code)]

pub mod agent;
pub mod commands;
pub mod executor;
pub mod orphans;
pub mod pod;
pub mod pod_status;
pub mod provisioner;
pub mod tenant;

pub use tenant::{TenantPlan, manifests, namespace_of, to_yaml};
