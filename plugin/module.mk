# plugin: the plugin registry and the built-in plugins of libcryo.so (issue 3).
