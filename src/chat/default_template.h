// The chat template used when a model carries none (tokenizer.chat_template absent): ChatML, the
// format most instruction-tuned models without their own template understand.
#pragma once

namespace origami {

inline constexpr const char* kDefaultChatTemplate =
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

}  // namespace origami
