// CSnappy from Debian's -dev package (parquet page decompression).
#pragma once
#include <snappy-c.h>
