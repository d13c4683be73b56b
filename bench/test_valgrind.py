"""The reading of valgrind's logs by scripts/valgrind, on a hand-made log:
a leak or memory error fails only when a frame of its record is the
module's; leaks of the server are counted, not judged."""

import unittest

from charon_bench.valgrind import check_log, crc64, records

LOG = """==7== Memcheck, a memory error detector
==7==
==7== 24 bytes in 1 blocks are definitely lost in loss record 3 of 90
==7==    at 0x48: malloc (vg_replace_malloc.c:446)
==7==    by 0x1A: zmalloc (zmalloc.c:120)
==7==
==7== 1,040 bytes in 2 blocks are definitely lost in loss record 9 of 90
==7==    at 0x48: malloc (vg_replace_malloc.c:446)
==7==    by 0x2B: charon::bucket::Bucket::new (bucket.rs:12)
==7==
==7== Invalid read of size 8
==7==    at 0x3C: lookupKey (db.c:80)
==7==
==7== LEAK SUMMARY:
==7==    definitely lost: 1,064 bytes in 3 blocks
"""


class ValgrindLogTest(unittest.TestCase):
    def test_records_without_the_pid_prefix(self):
        found = records(LOG)
        self.assertEqual(found[0], ["Memcheck, a memory error detector"])
        self.assertEqual(found[2], ["1,040 bytes in 2 blocks are definitely lost in loss record "
                                    "9 of 90", "   at 0x48: malloc (vg_replace_malloc.c:446)",
                                    "   by 0x2B: charon::bucket::Bucket::new (bucket.rs:12)"])
        self.assertEqual(len(found), 5)

    def test_only_the_modules_records_are_problems(self):
        leaked, module_leaked, problems = check_log(LOG)
        self.assertEqual((leaked, module_leaked), (1064, 1040))
        self.assertEqual([p[0] for p in problems],
                         ["1,040 bytes in 2 blocks are definitely lost in loss record 9 of 90"])

    def test_a_memory_error_in_the_module_is_a_problem(self):
        log = LOG.replace("lookupKey (db.c:80)", "RedisModule_OnLoad (in /x/libcharon.so)")
        _, _, problems = check_log(log)
        self.assertEqual(problems[-1][0], "Invalid read of size 8")

    def test_a_clean_log(self):
        self.assertEqual(check_log("==1== All heap blocks were freed\n"), (0, 0, []))

    def test_crc64_of_redis(self):
        # Redis's crc64 test vector (src/crc64.c).
        self.assertEqual(crc64(b"123456789"), 0xE9C6D914C4B8D9CA)


if __name__ == "__main__":
    unittest.main()
