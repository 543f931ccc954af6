// Package ssi is a pure codec for Zebra's Simple Serial Interface packets:
//
//	Length Opcode Source Status Data... CkHi CkLo
//
// Length counts every byte but the checksum (so it is at least 4); the
// checksum is the two's complement of the 16-bit sum of those bytes, sent
// high byte first. Sources: the SSI Programmer's Guide (Zebra 72E-40451,
// "General Packet Format", "Field Descriptions", "DECODE_DATA", "CMD_NAK")
// and Zebra scanner product reference guides ("SSI Interface",
// "Encapsulation of RSM Commands/Responses over SSI" for the continuation
// bit, "Software Handshaking" #159 = 0x9F, "Decode Data Packet Format" #238
// = 0xEE). The link behaviour (ACK/NAK, retransmission) lives in ssilink.
package ssi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Opcodes used by posguard.
const (
	OpParamSend   byte = 0xC6
	OpCmdAck      byte = 0xD0
	OpCmdNak      byte = 0xD1
	OpBeep        byte = 0xE6
	OpLEDOn       byte = 0xE7
	OpLEDOff      byte = 0xE8
	OpScanEnable  byte = 0xE9
	OpScanDisable byte = 0xEA
	OpDecodeData  byte = 0xF3
)

// Message sources.
const (
	SourceDecoder byte = 0x00
	SourceHost    byte = 0x04
)

// Status bits.
const (
	StatusRetransmit byte = 0x01 // 0 = first transmission, 1 = a retry
	StatusContinued  byte = 0x02 // more packets of this message follow
	StatusPermanent  byte = 0x08 // PARAM_SEND: change survives power-off
)

// CMD_NAK causes.
const (
	NakResend     byte = 0x01 // checksum failure: send it again
	NakBadContext byte = 0x02 // unknown or unexpected opcode
	NakDenied     byte = 0x06 // understood, refused
	NakCancel     byte = 0x0A
)

// Parameter numbers sent with PARAM_SEND at start-up.
const (
	ParamSoftwareHandshaking byte = 0x9F // 1 = ACK/NAK handshaking
	ParamDecodeDataPacketed  byte = 0xEE // 1 = DECODE_DATA packets, 0 = raw ASCII
	BeepNone                 byte = 0xFF // PARAM_SEND beep code: no beep
)

const (
	// HeaderLen is Length, Opcode, Source, Status.
	HeaderLen = 4
	// MaxData is the most data one packet carries (Length is one byte).
	MaxData = 255 - HeaderLen
	// MaxPacket is the longest packet on the wire, checksum included.
	MaxPacket = 255 + 2
)

// Packet is one SSI message.
type Packet struct {
	Opcode byte
	Source byte
	Status byte
	Data   []byte
}

// Checksum is the two's complement of the 16-bit sum of b.
func Checksum(b []byte) uint16 {
	var sum uint16
	for _, c := range b {
		sum += uint16(c)
	}
	return -sum
}

// ErrTooLong is returned when a packet's data does not fit in one packet.
var ErrTooLong = errors.New("ssi: data longer than 251 bytes")

// Append encodes p onto dst.
func Append(dst []byte, p Packet) ([]byte, error) {
	if len(p.Data) > MaxData {
		return dst, fmt.Errorf("%w: %d bytes", ErrTooLong, len(p.Data))
	}
	start := len(dst)
	dst = append(dst, byte(HeaderLen+len(p.Data)), p.Opcode, p.Source, p.Status)
	dst = append(dst, p.Data...)
	return binary.BigEndian.AppendUint16(dst, Checksum(dst[start:])), nil
}

// Encode is Append to a new slice.
func Encode(p Packet) ([]byte, error) { return Append(make([]byte, 0, HeaderLen+len(p.Data)+2), p) }

// Code types of DECODE_DATA (SSI guide, "Code Types" table).
const (
	CodeCode39     byte = 0x01
	CodeCode128    byte = 0x03
	CodeI2of5      byte = 0x06
	CodeUPCA       byte = 0x08
	CodeEAN8       byte = 0x0A
	CodeEAN13      byte = 0x0B
	CodeGS1128     byte = 0x0F
	CodeDataMatrix byte = 0x1B
	CodeQR         byte = 0x1C
	CodeGS1DM      byte = 0xC1
	CodeGS1QR      byte = 0xC2
)
