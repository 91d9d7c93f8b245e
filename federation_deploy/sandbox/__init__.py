"""The sandbox: a whole federation on one machine, with stand-in BinderHub members."""
