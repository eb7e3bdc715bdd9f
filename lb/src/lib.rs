//! strait-lb: the L4 director. Its datapaths arrive with the director issue (#4); until then this crate is empty on purpose.
