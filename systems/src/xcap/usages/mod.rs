//! The application usages presenced serves, one module each.

pub mod pres_rules;
pub mod read_only;
pub mod resource_lists;
pub mod rls_services;
