/*
 * posguard_share_acl: a Mosquitto 2.0 plugin that refuses shared
 * subscriptions ($share/GROUP/...) to every client but HQ.
 *
 * Why: Mosquitto's acl_file never checks a SUBSCRIBE (2.0's
 * security_default.c: "FIXME - implement ACL subscription strings"); it
 * checks read access only when delivering. A register certificate could so
 * join HQ's group $share/GROUP/posguard/v1/reg/+/+/events: the broker deals
 * it every Nth event, the read check drops it, and HQ's ingest stalls until
 * the registers resend. This plugin refuses the subscription itself and
 * defers everything else to the acl_file.
 *
 * HQ identities are "hq" and "hq-NAME", NAME 1 to 32 of A-Z a-z 0-9 _ -
 * (wire.IsHQUsername); with use_identity_as_username the username is the
 * certificate's CN.
 *
 * Build (needs the mosquitto-dev headers):
 *   cc -shared -fPIC -O2 -Wall -o posguard_share_acl.so posguard_share_acl.c
 * and load it with `plugin /etc/mosquitto/posguard/posguard_share_acl.so`
 * (see mosquitto.conf).
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

static mosquitto_plugin_id_t *plugin_id;

static bool is_hq(const char *user)
{
	size_t n;
	const char *p;

	if(user == NULL) return false;
	if(strcmp(user, "hq") == 0) return true;
	if(strncmp(user, "hq-", 3) != 0) return false;
	n = strlen(user + 3);
	if(n < 1 || n > 32) return false;
	for(p = user + 3; *p; p++){
		char c = *p;
		if(!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_')){
			return false;
		}
	}
	return true;
}

static int acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;

	(void)event;
	(void)userdata;
	if(ed->access == MOSQ_ACL_SUBSCRIBE && strncmp(ed->topic, "$share/", 7) == 0
			&& !is_hq(mosquitto_client_username(ed->client))){
		return MOSQ_ERR_ACL_DENIED;
	}
	return MOSQ_ERR_PLUGIN_DEFER;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	int i;

	for(i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **user_data, struct mosquitto_opt *opts, int opt_count)
{
	(void)user_data;
	(void)opts;
	(void)opt_count;
	plugin_id = identifier;
	return mosquitto_callback_register(plugin_id, MOSQ_EVT_ACL_CHECK, acl_check, NULL, NULL);
}

int mosquitto_plugin_cleanup(void *user_data, struct mosquitto_opt *opts, int opt_count)
{
	(void)user_data;
	(void)opts;
	(void)opt_count;
	return mosquitto_callback_unregister(plugin_id, MOSQ_EVT_ACL_CHECK, acl_check, NULL);
}
