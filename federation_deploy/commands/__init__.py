"""One plain function per CLI command; each returns data or an exit code, never prints."""
