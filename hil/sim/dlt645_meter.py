"""A DL/T 645-2007 meter simulator on a serial port (a pty in tests and the HIL rig).

Answers read-data (0x11) for the identifiers in ``drivers.dlt645_ids.FORMATS`` from a
settable value table, read-address (0x13) by broadcast, and unknown identifiers with an
error reply (0xD1, "no requested data"), like a real meter.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import serial

from drivers import dlt645
from drivers.dlt645_ids import FORMATS, bcd_encode


class MeterSimulator:
    def __init__(self, port: str, address: str = "123456789012", baudrate: int = 2400, parity: str = "E") -> None:
        self.address = address
        self.values: dict[str, float] = {
            "00000000": 1234.56,
            "00010000": 1200.00,
            "00020000": 34.56,
            "02010100": 229.8,
            "02010200": 230.1,
            "02010300": 231.0,
            "02020100": 12.345,
            "02020200": 11.5,
            "02020300": 12.0,
            "02030000": 8.2,
            "02030100": 2.7,
            "02030200": 2.8,
            "02030300": 2.7,
            "02040000": 1.5,
            "02060000": 0.982,
            "02800002": 50.01,
        }
        #: called before each answer, e.g. to make power follow a process model
        self.on_request: Callable[[MeterSimulator], None] | None = None
        self.silent = False
        #: line noise: garbage before answers and one answer in four corrupted
        self.noise = False
        self.requests = 0
        #: answers corrupted by the noise (each must cost the reader one failed read, no more)
        self.corrupted = 0
        #: bytes of noise put on the line (garbage and corrupted answers), wake-up FE bytes not counted
        self.noise_bytes = 0
        self._serial = serial.Serial(port, baudrate=baudrate, parity=parity, bytesize=8, stopbits=1, timeout=0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="dlt645-meter")

    def start(self) -> MeterSimulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._serial.close()

    def _answer(self, frame: dlt645.Frame) -> bytes | None:
        if frame.control == dlt645.C_READ_ADDRESS:
            return dlt645.encode(self.address, dlt645.C_ADDRESS_OK, dlt645.address_bytes(self.address))
        if frame.control != dlt645.C_READ or frame.address not in (self.address, dlt645.BROADCAST_READ_ADDRESS):
            return None
        di = "".join(f"{b:02X}" for b in reversed(frame.data[:4]))
        if self.on_request:
            self.on_request(self)
        fmt = FORMATS.get(di)
        if fmt is None or di not in self.values:
            return dlt645.encode(self.address, dlt645.C_READ_ERR, bytes([0x02]))
        value = bcd_encode(self.values[di], fmt.nbytes, fmt.decimals, fmt.signed)
        return dlt645.encode(self.address, dlt645.C_READ_OK, frame.data[:4] + value)

    def _run(self) -> None:
        decoder = dlt645.Decoder()
        while not self._stop.is_set():
            try:
                chunk = self._serial.read(64)
            except (serial.SerialException, OSError, TypeError):
                return
            for frame in decoder.feed(chunk):
                self.requests += 1
                answer = None if self.silent else self._answer(frame)
                if answer and self.noise:
                    garbage = os.urandom(5)
                    self.noise_bytes += sum(b != 0xFE for b in garbage)
                    answer = garbage + answer
                    if self.requests % 4 == 0:
                        answer = answer[:-3] + bytes([answer[-3] ^ 0x5A]) + answer[-2:]
                        self.corrupted += 1
                        self.noise_bytes += sum(b != 0xFE for b in answer[5:])
                if answer:
                    self._serial.write(answer)
