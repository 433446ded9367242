# Unit tests of launch/: option parsing, LD_PRELOAD and PATH search
# (test_options), and the real cryo_launch in a fake install tree (test_launch).
UNIT_TESTS += launch/options launch/launch
unit_launch_options_OBJS := build/launch/options.o
build/test/unit/launch/launch: | build/bin/cryo_launch build/bin/cryo_coordinator \
	build/bin/cryo_command
