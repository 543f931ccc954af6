package wire

import (
	"fmt"
	"strings"
)

// A NATS server's MQTT gateway carries each MQTT topic on a NATS subject:
// '/' becomes '.', and a '.' inside a level becomes "//". posguard's topics
// have no '.' (ids are A-Z a-z 0-9 - _), so the mapping is '/' ↔ '.' both
// ways, and a subject with "//" is not one of ours.

// SubjectOfTopic is the NATS subject of an MQTT topic or filter ('+' and
// '#' become '*' and '>').
func SubjectOfTopic(topic string) string {
	s := strings.ReplaceAll(topic, "/", ".")
	s = strings.ReplaceAll(s, "+", "*")
	if strings.HasSuffix(s, "#") {
		s = s[:len(s)-1] + ">"
	}
	return s
}

// TopicOfSubject is the MQTT topic a register published a NATS subject
// as.
func TopicOfSubject(subject string) (string, error) {
	if subject == "" || strings.Contains(subject, "//") || strings.ContainsAny(subject, "/*> ") {
		return "", fmt.Errorf("subject %q: not a posguard topic", subject)
	}
	return strings.ReplaceAll(subject, ".", "/"), nil
}

// HQStreamSubjects are the subjects of the JetStream stream HQ consumes on
// a NATS cluster: what HQFilters splits across HQ instances (events,
// alerts, commands), never the status, which every instance watches live.
func HQStreamSubjects() []string {
	return []string{
		SubjectOfTopic(regFilter(KindEvents)),
		SubjectOfTopic(regFilter(KindAlerts)),
		SubjectOfTopic(regFilter(KindCmd)),
	}
}
