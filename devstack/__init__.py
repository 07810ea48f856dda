"""The development stack that tests/, perf/ and contract_tests/ share: throw-away databases,
vhosts and Redis databases on this machine's servers, and the services started as processes."""
