//! Releases (API.md, "Releases"): what the `deploy` step asks for and the release controller
//! carries out. Here: the plan of a blue-green release and its health analysis, as pure
//! functions; the controller, runtimes and router are in the `sluice-release` crate, the
//! persisted state in `store::releases`.

pub mod plan;
