# test: unit tests and test programs register themselves in their own
# module.mk files (test/unit/<dir>/module.mk, test/apps/module.mk).
include $(wildcard test/unit/*/module.mk) $(wildcard test/apps/module.mk)
