// glibc's malloc tuning (mallopt), which Swift's Glibc module does not import.
#pragma once
#include <malloc.h>
