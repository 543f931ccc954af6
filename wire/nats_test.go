package wire

import (
	"slices"
	"strings"
	"testing"
)

func TestSubjectOfTopic(t *testing.T) {
	for _, tt := range []struct{ topic, subject string }{
		{EventsTopic("S014", "R2"), "posguard.v1.reg.S014.R2.events"},
		{regFilter(KindAlerts), "posguard.v1.reg.*.*.alerts"},
		{Prefix + "/#", "posguard.v1.>"},
	} {
		if got := SubjectOfTopic(tt.topic); got != tt.subject {
			t.Errorf("SubjectOfTopic(%q) = %q, want %q", tt.topic, got, tt.subject)
		}
	}
	if got, want := HQStreamSubjects(), []string{"posguard.v1.reg.*.*.events", "posguard.v1.reg.*.*.alerts", "posguard.v1.reg.*.*.cmd"}; !slices.Equal(got, want) {
		t.Errorf("HQStreamSubjects() = %q, want %q", got, want)
	}
}

func TestTopicOfSubject(t *testing.T) {
	for _, tt := range []struct{ subject, topic, err string }{
		{"posguard.v1.reg.S014.R2.events", EventsTopic("S014", "R2"), ""},
		{"posguard.v1.reg.S.1.R.events", "posguard/v1/reg/S/1/R/events", ""}, // ParseRegTopic refuses it later
		{"posguard.v1.reg.S//1.R.events", "", "not a posguard topic"},
		{"posguard.v1.reg.*.*.events", "", "not a posguard topic"},
		{"", "", "not a posguard topic"},
	} {
		got, err := TopicOfSubject(tt.subject)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("TopicOfSubject(%q) error %v, want %q", tt.subject, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.topic {
			t.Errorf("TopicOfSubject(%q) = %q, %v; want %q", tt.subject, got, err, tt.topic)
		}
	}
}
