"""One module per `cxpolicy` subcommand; each is a thin layer over the public API."""
