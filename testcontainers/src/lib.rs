//! Throwaway PostgreSQL servers for qrd's tests and demo, without a container engine: real `initdb` +
//! `pg_ctl` of each installed major (see `install-postgres.sh` and its manifest), a private temp dir, socket
//! dir and free port per server, private network/UTS namespaces for distinct loopback clients and
//! hostnames, and cleanup on drop with the server log printed when a test panics. [`DebianCluster`] is a
//! cluster as Debian/Ubuntu package it (pg_createcluster, pg_ctlcluster, peer, snakeoil TLS key).
//! [`HaLab`] runs etcd, Patroni members and HAProxy on a private loopback block for `qrd ha`.
//! [`fixtures`] loads the test site of `sql/fixtures/` (a QSR-like repository database and the other Qlik
//! databases) onto a server.
//!
//! ```no_run
//! # async fn demo() {
//! use qrd_testcontainers::{HostAuth, Server};
//! let server = Server::builder(14).host_auth(HostAuth::Md5).start().unwrap();
//! let client = server.connect("postgres").await;
//! let out = server.psql("postgres").args(["-c", "SELECT 1"]).output().unwrap();
//! # }
//! ```

mod debian;
mod error;
pub mod fixtures;
mod halab;
mod install;
mod namespace;
mod server;
mod user;
mod writer;

pub use debian::{DEBIAN_MAJOR, DebianCluster, SNAKEOIL_KEY};
pub use error::HarnessError;
pub use halab::{HaLab, LAB_LOOP_WAIT, LAB_RETRY_TIMEOUT, LAB_TTL};
pub use install::{Installation, installation, manifest_path};
pub use namespace::{Namespace, NamespaceBuilder};
pub use server::{HostAuth, Server, ServerBuilder, random_password};
pub use user::SERVER_USER;
pub use writer::{Writer, WriterTarget, Written};

/// The majors tested in every run.
pub const EVERY_RUN: [u32; 2] = [16, 15];
/// The majors of the smoke set: 14 (14.17, the version Qlik Sense bundles) and 12, the oldest supported.
pub const SMOKE: [u32; 2] = [14, 12];
