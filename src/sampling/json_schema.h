// JSON Schema -> Grammar: the subset OpenAI's response_format and tool parameters use, compiled so
// every sentence of the grammar is JSON that validates against the schema.
//
// Supported: type (object, array, string, number, integer, boolean, null, and arrays of types),
// properties / required / additionalProperties (false, true or a schema), enum, const, items,
// prefixItems, minItems / maxItems, minLength / maxLength, anyOf / oneOf (as anyOf), allOf
// (merged), $ref to "#", "#/$defs/..", "#/definitions/.." or any JSON pointer into the root,
// nullable, format date / time / date-time / uuid. Ignored (documented): annotations (title,
// description, default, examples, ...), other formats; minimum / exclusiveMinimum only steer the
// sign (>= 0 forbids '-'; integers > 0 also forbid "0"), maximum / exclusiveMaximum are not
// enforced. Rejected with an origami::Error naming the keyword and where: pattern,
// patternProperties, not, if / then / else, dependentRequired, dependentSchemas, dependencies,
// propertyNames, contains, uniqueItems, unevaluated*, minProperties / maxProperties, multipleOf,
// $dynamicRef.
//
// Generation terminates: whitespace between tokens is nothing, one space, or one newline and an
// indent of at most kJsonMaxIndent spaces or tabs (kJsonMaxWs bytes in all), numbers have at
// most 16 integer, 16 fraction and 2 exponent digits (so they fit a double). Properties come in
// the order the schema lists them (with ordered_json); when properties are given, undeclared ones
// are only generated if additionalProperties allows them explicitly.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "sampling/grammar.h"

namespace origami {

inline constexpr uint32_t kJsonMaxIndent = 16;
inline constexpr uint32_t kJsonMaxWs = 1 + kJsonMaxIndent;

// Adds schema rules to a GrammarBuilder; several root schemas (e.g. one per tool) can share one
// builder and its primitive rules.
class JsonSchemaCompiler {
 public:
  explicit JsonSchemaCompiler(GrammarBuilder& b);
  ~JsonSchemaCompiler();
  // The rule for one value matching `schema` ($refs resolve inside this schema). Throws
  // origami::Error for invalid or unsupported schemas.
  uint32_t CompileRoot(const nlohmann::ordered_json& schema, const std::string& name);
  uint32_t CompileRoot(const nlohmann::json& schema, const std::string& name);
  uint32_t AnyValue();
  uint32_t AnyObject();
  uint32_t Ws();  // optional whitespace

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Any JSON object (response_format {"type":"json_object"}).
std::shared_ptr<const Grammar> JsonObjectGrammar();
// A value matching the schema (response_format {"type":"json_schema"}).
// Pass nlohmann::ordered_json (parse the request with it) to keep the schema's property order;
// nlohmann::json sorts keys, so properties are then asked for in alphabetical order.
std::shared_ptr<const Grammar> JsonSchemaGrammar(const nlohmann::ordered_json& schema);
std::shared_ptr<const Grammar> JsonSchemaGrammar(const nlohmann::json& schema);
// The whole OpenAI response_format object: nullptr for {"type":"text"}; json_object and
// json_schema (the schema at json_schema.schema) as above. Errors name the field.
std::shared_ptr<const Grammar> ResponseFormatGrammar(const nlohmann::ordered_json& response_format);
std::shared_ptr<const Grammar> ResponseFormatGrammar(const nlohmann::json& response_format);

}  // namespace origami
