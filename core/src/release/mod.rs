//! Releases (API.md, "Releases"): what the `deploy` step asks for and the release controller
//! carries out. So far: the plan of a blue-green release and its health analysis, as pure
//! functions; the controller, runtimes and router are to come (issue 12).

pub mod plan;
