# launch: cryo_launch.
launch_SRCS += launch/launch.c
