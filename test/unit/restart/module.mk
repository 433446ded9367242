# Unit tests of restart/ (and the maps parser the loader shares with libcryo).
UNIT_TESTS += restart/plan restart/maps_parse
unit_restart_plan_OBJS := build/restart/plan.o
# Chain composition of incremental images.
UNIT_TESTS += restart/chain
unit_restart_chain_OBJS := build/restart/chain.o
