"""The RESP client that the bench and the valgrind workload share: what it
sends, and how it reads every reply type, split across reads as a socket
may deliver it. A fake socket stands in for the server."""

import unittest

from charon_bench.client import Client, ReplyError
from charon_bench.errors import BenchError


class FakeSocket:
    """Hands out `incoming` a few bytes per recv; keeps what was sent."""

    def __init__(self, incoming: bytes, chunk: int = 3):
        self.incoming, self.chunk, self.sent = incoming, chunk, b""

    def recv(self, _size):
        data, self.incoming = self.incoming[:self.chunk], self.incoming[self.chunk:]
        return data

    def sendall(self, data):
        self.sent += data


class EncodeTest(unittest.TestCase):
    def test_strings_ints_and_bytes(self):
        self.assertEqual(Client.encode(["SET", "k", 12, b"\x00\xff"]),
                         b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n$2\r\n\x00\xff\r\n")

    def test_keyed_commands_replace_only_the_key(self):
        data = Client.encode_keyed(("CHARON.RATE", "{key}", "10", "1", "1s"), ["a", "bcd"])
        self.assertEqual(data, Client.encode(["CHARON.RATE", "a", "10", "1", "1s"])
                         + Client.encode(["CHARON.RATE", "bcd", "10", "1", "1s"]))


class ReplyTest(unittest.TestCase):
    def client(self, incoming: bytes) -> Client:
        return Client(FakeSocket(incoming))

    def test_every_reply_type(self):
        client = self.client(b"+OK\r\n:-42\r\n$5\r\nab\r\nc\r\n$-1\r\n*-1\r\n"
                             b"*3\r\n:1\r\n*1\r\n$0\r\n\r\n-ERR no\r\n")
        self.assertEqual(client.reply(), "OK")
        self.assertEqual(client.reply(), -42)
        self.assertEqual(client.reply(), b"ab\r\nc")  # a bulk string may hold CRLF
        self.assertIsNone(client.reply())
        self.assertIsNone(client.reply())
        nested = client.reply()
        self.assertEqual(nested[:2], [1, [b""]])
        self.assertIsInstance(nested[2], ReplyError)
        self.assertEqual(str(nested[2]), "ERR no")

    def test_pipeline_sends_at_once_and_returns_errors_as_values(self):
        client = self.client(b"+PONG\r\n-WRONGTYPE bad\r\n:3\r\n")
        replies = client.pipeline([["PING"], ["GET", "k"], ["INCR", "k"]])
        self.assertEqual(client.sock.sent, Client.encode(["PING"]) + Client.encode(["GET", "k"])
                         + Client.encode(["INCR", "k"]))
        self.assertEqual(replies[0], "PONG")
        self.assertIsInstance(replies[1], ReplyError)
        self.assertEqual(replies[2], 3)

    def test_call_raises_on_an_error_reply(self):
        with self.assertRaisesRegex(BenchError, "CHARON.RATE k: ERR wrong number"):
            self.client(b"-ERR wrong number\r\n").call("CHARON.RATE", "k")

    def test_a_closed_connection_fails(self):
        with self.assertRaisesRegex(BenchError, "closed the connection"):
            self.client(b"$10\r\nabc").reply()

    def test_info_fields(self):
        text = b"# Charon\r\ncharon_calls:7\r\ncharon_limited:2\r\n\r\n"
        client = self.client(b"$%d\r\n%s\r\n" % (len(text), text))
        self.assertEqual(client.info("charon"), {"charon_calls": "7", "charon_limited": "2"})

    def test_shutdown_reads_until_the_server_closes(self):
        client = self.client(b"")
        client.sock.close = lambda: None
        client.shutdown()
        self.assertEqual(client.sock.sent, Client.encode(["SHUTDOWN", "NOSAVE"]))


if __name__ == "__main__":
    unittest.main()
