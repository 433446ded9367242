# launch: cryo_launch (options.c holds its unit-tested decisions).
launch_SRCS += launch/launch.c launch/options.c
