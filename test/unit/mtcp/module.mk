# Unit tests of mtcp/: the image format (writer, reader, CRC-32C).
UNIT_TESTS += mtcp/crc32c
