//! router-core
