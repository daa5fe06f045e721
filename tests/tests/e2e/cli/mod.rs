//! The real binaries, as an operator runs them: `nester init|serve|token|demo`,
//! `harvester enroll|run|status|scan`, and the errors they give for bad input.

mod input;
mod processes;
mod scan;
mod small_config;
mod web_listener;
