//! The Redis Functions library (lua/charon.lua) against the module.
