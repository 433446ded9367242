# restart: cryo_restart (hosted) and the freestanding restorer it loads.
restart_SRCS += restart/restart.c restart/loader.c restart/plan.c restart/chain.c restart/blob.S
restorer_SRCS += restart/restorer/restorer.c restart/plan.c
# loader.c includes the generated description of the restorer blob.
build/restart/loader.o: build/gen/restorer_blob.h
