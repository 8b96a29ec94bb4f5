/* units.h: parsing durations and sizes (units.c). */
#ifndef PROVISION_UNITS_H
#define PROVISION_UNITS_H
int provision_parse_duration(const char *s, double *out);
int provision_parse_size(const char *s, double *out);
#endif
