//! Integration tests: every test starts the real server on 127.0.0.1:0 and talks to it over
//! a real socket, once on SQLite (a temporary file) and once on PostgreSQL (a fresh database
//! created from `CLIENTELE_TEST_POSTGRES_URL`).

#[macro_use]
mod support;

mod access;
mod architecture;
mod attachments;
mod auth;
mod catalogue;
mod changes;
mod cli;
mod clients;
mod comments;
mod contact_groups;
mod contract;
mod customer_sources;
mod customers;
mod deploy;
mod details;
mod directories;
mod domain_assignment;
mod escalation;
mod etags;
mod field_behavior;
mod imports;
mod intake;
mod links;
mod merge;
mod observe;
mod organisations;
mod permissions;
mod privacy;
mod races;
mod replicas;
mod search;
mod server;
mod settings;
mod sheets;
mod sla;
mod ticket_list;
mod ticket_merge;
mod ticket_rights;
mod tickets;
mod tls;
mod traces;
mod transport;
mod webhooks;
